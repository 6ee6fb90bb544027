"""Image sources, the decoded-image cache, balanced splits, and the errors a user can act on."""

import warnings

import numpy as np
import pytest
import torch
from genprobe.data import (
    ImageSource,
    LabeledSet,
    Preprocess,
    SplitConfig,
    balanced_split,
    check_compatible,
    split_sets,
    write_image_folder,
)
from genprobe.toy import ToyConfig, toy_pair
from PIL import Image
from safetensors.torch import save_file


def _rgb(h, w, value=0):
    return Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8))


def test_folder_is_read_recursively_in_sorted_order_with_all_formats(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    _rgb(8, 8, 10).save(tmp_path / "b.png")
    _rgb(8, 8, 20).save(tmp_path / "sub" / "a.jpg", quality=100)
    _rgb(8, 8, 30).save(tmp_path / "sub" / "deeper" / "c.webp", lossless=True)
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageSource.from_folder(tmp_path, "real")
    assert len(src) == 3
    assert src.image_shape == (3, 8, 8)
    assert [p.name for p in src.paths] == ["b.png", "a.jpg", "c.webp"]
    x = src.get([0, 1, 2])
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    assert [round(float(v) * 255) for v in x.mean(dim=(1, 2, 3))] == [10, 20, 30]


def test_unreadable_files_are_skipped_with_one_warning_and_counted(tmp_path):
    for i in range(3):
        _rgb(8, 8, i).save(tmp_path / f"ok{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        src = ImageSource.from_folder(tmp_path)
    assert len(src) == 3
    assert {p.name for p in src.skipped} == {"broken.png", "empty.jpg"}


def test_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageSource.from_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageSource.from_folder(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _rgb(8, 8).save(mixed / "a.png")
    _rgb(10, 6).save(mixed / "b.png")
    with pytest.raises(ValueError, match=r"different sizes.*--size"):
        ImageSource.from_folder(mixed)
    with pytest.raises(ValueError, match="smaller than the 7px"):
        ImageSource.from_folder(mixed, preprocess=Preprocess(size=7))
    # With a crop size that fits both, or a resize policy, they become one size.
    assert ImageSource.from_folder(mixed, preprocess=Preprocess(size=6)).get([0, 1]).shape == (2, 3, 6, 6)
    fit = ImageSource.from_folder(mixed, preprocess=Preprocess(size=12, mode="resize_crop", channels=1))
    assert fit.get([0, 1]).shape == (2, 1, 12, 12)


def test_center_crop_keeps_pixels_untouched(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    x = ImageSource.from_folder(tmp_path, preprocess=Preprocess(size=8)).get_raw([0])[0]
    assert torch.equal(x, torch.from_numpy(arr[6:14, 8:16].transpose(2, 0, 1).copy()))


def test_cache_decodes_each_image_once_and_matches_uncached(tmp_path):
    imgs = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    write_image_folder(imgs, tmp_path)
    cached = ImageSource.from_folder(tmp_path, cache=True, workers=2)
    plain = ImageSource.from_folder(tmp_path, cache=False)
    for idx in ([3, 1, 3], [0, 1, 2, 3], [9, 3]):
        assert torch.equal(cached.get(idx), plain.get(idx))
    assert cached.loads == 5  # 3 and 1, then 0 and 2, then 9: each image once
    assert plain.loads == 9
    assert torch.allclose(cached.get(torch.arange(10)), imgs, atol=0.5 / 255 + 1e-6)


def test_tensor_sources_and_tensor_files(tmp_path):
    x = torch.rand(5, 1, 4, 4)
    src = ImageSource.from_tensor(x, "t")
    assert torch.equal(src.get([4, 0]), x[[4, 0]])
    u8 = ImageSource.from_tensor((x * 255).to(torch.uint8), "u")
    assert torch.allclose(u8.get([0]), x[:1], atol=1 / 255)
    save_file({"images": x}, str(tmp_path / "x.safetensors"))
    np.save(tmp_path / "y.npy", x.numpy())
    assert torch.equal(ImageSource.parse(f"a={tmp_path / 'x.safetensors'}").get([1]), x[[1]])
    b = ImageSource.parse(str(tmp_path / "y.npy"))
    assert b.name == "y"
    assert len(b) == 5
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ImageSource.from_tensor(torch.zeros(3, 4, 4), "bad")
    with pytest.raises(ValueError, match="NaN"):
        ImageSource.from_tensor(torch.full((1, 1, 2, 2), float("nan")), "nan")


def test_generator_source_is_deterministic_whatever_the_access_order():
    def fn(n, g):
        return torch.rand(n, 1, 2, 2, generator=g)

    a = ImageSource.from_generator(fn, 50, "g", seed=7, chunk_size=8)
    b = ImageSource.from_generator(fn, 50, "g", seed=7, chunk_size=8, cache=False)
    late = a.get([49, 3, 20])
    assert torch.equal(b.get([49, 3, 20]), late)
    assert torch.equal(a.get(torch.arange(50))[[49, 3, 20]], late)
    with pytest.raises(ValueError, match="must return"):
        ImageSource.from_generator(lambda n, g: torch.zeros(n + 1, 1, 2, 2), 4, "bad").get([0])


def test_sources_with_neighbouring_seeds_share_no_image():
    # Regression: chunk c of seed s and chunk c-1 of seed s+1 used to get the same generator seed,
    # so two classes shared images and chance-level probes came out below chance.
    def fn(n, g):
        return torch.randn(n, 1, 2, 2, generator=g)

    xs = [
        ImageSource.from_generator(fn, 64, f"s{s}", seed=s, chunk_size=8).get(torch.arange(64))
        for s in (0, 1)
    ]
    d = torch.cdist(xs[0].flatten(1), xs[1].flatten(1))
    assert float(d.min()) > 1e-3


def test_balanced_split_is_disjoint_balanced_deterministic_and_nested():
    a, b = toy_pair("hf", 60, ToyConfig(size=8))
    c = ImageSource.from_tensor(torch.zeros(80, 1, 8, 8), "bigger")
    cfg = SplitConfig(test_per_class=10, val_per_class=5, seed=1)
    sp = balanced_split([a, b, c], cfg)
    for tr, va, te in zip(sp.train, sp.val, sp.test):
        assert (len(tr), len(va), len(te)) == (45, 5, 10)  # balanced to the smallest source (60)
        assert len(set(tr.tolist()) | set(va.tolist()) | set(te.tolist())) == 60
    again = balanced_split([a, b, c], cfg)
    assert all(torch.equal(x, y) for x, y in zip(sp.train + sp.test, again.train + again.test))
    small = balanced_split(
        [a, b, c], SplitConfig(test_per_class=10, val_per_class=5, train_per_class=20, seed=1)
    )
    assert all(torch.equal(s, t[:20]) for s, t in zip(small.train, sp.train))  # nested training sets
    assert all(torch.equal(s, t) for s, t in zip(small.test, sp.test))  # one test set
    with pytest.raises(ValueError, match="has 60 images but the split needs"):
        balanced_split([a, b], SplitConfig(test_per_class=50, val_per_class=5, train_per_class=10))


def test_labeled_set_batches_carry_the_source_index_as_label():
    x0, x1 = torch.zeros(6, 1, 2, 2), torch.ones(6, 1, 2, 2)
    s = LabeledSet(
        [ImageSource.from_tensor(x0, "a"), ImageSource.from_tensor(x1, "b")],
        [torch.arange(3), torch.arange(4)],
    )
    x, y = s.batch(torch.tensor([6, 0, 3, 2]))
    assert y.tolist() == [1, 0, 1, 0]
    assert x.mean(dim=(1, 2, 3)).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert len(s) == 7
    assert s.class_names == ["a", "b"]
    _tr, va, te = split_sets(
        [ImageSource.from_tensor(x0, "a"), ImageSource.from_tensor(x1, "b")],
        balanced_split(
            [ImageSource.from_tensor(x0, "a"), ImageSource.from_tensor(x1, "b")],
            SplitConfig(test_per_class=2, val_per_class=0),
        ),
    )
    assert va is None
    assert len(te) == 4


def test_incompatible_sources_are_refused():
    a = ImageSource.from_tensor(torch.zeros(4, 3, 8, 8), "a")
    with pytest.raises(ValueError, match="at least two"):
        check_compatible([a])
    with pytest.raises(ValueError, match="unique"):
        check_compatible([a, ImageSource.from_tensor(torch.zeros(4, 3, 8, 8), "a")])
    with pytest.raises(ValueError, match="different image shapes"):
        check_compatible([a, ImageSource.from_tensor(torch.zeros(4, 3, 4, 4), "b")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_compatible([a, ImageSource.from_tensor(torch.zeros(4, 3, 8, 8), "b")])
