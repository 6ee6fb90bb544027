"""Image sources (folders, tensors, generator callables), deterministic balanced splits, and labelled batches.

A distribution-classification task (arXiv 2405.18029) has one class per image source: real images and the
samples of one or several generators. Everything a classifier trains on comes from :class:`ImageSource`.

Resize / crop policy (stated because it matters here): resampling changes exactly the high frequencies the probe
measures, so the default keeps pixels as they are.

- ``Preprocess(size=None)``: native size; every image of a source must have the same size (else a clear error).
- ``Preprocess(size=S, mode="center_crop")`` (the default when a size is given): an ``S x S`` centre crop, no
  resampling; images smaller than ``S`` are an error.
- ``mode="resize_crop"``: the shorter side is resized to ``S`` (Pillow bilinear, antialiased when shrinking),
  then centre-cropped (torchvision's ``Resize(S) + CenterCrop(S)``).
- ``mode="resize"``: resized to ``S x S`` (aspect ratio not kept).

Images are converted to RGB (``channels=3``) or grayscale (``channels=1``); alpha is dropped. Folder images are
kept as uint8 in the decoded-image cache and returned as float32 in [0, 1].
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gen_common.atomic import atomic_path
from gen_common.seeding import make_generator, split_seed

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "LabeledSet",
    "Preprocess",
    "Split",
    "SplitConfig",
    "balanced_split",
    "check_compatible",
    "split_sets",
    "write_image_folder",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GeneratorFn = Callable[[int, torch.Generator], torch.Tensor]
_CHUNK_STREAM = 0x67656E70726F6265  # a fixed key: the generator sources' seed stream


@dataclass(frozen=True)
class Preprocess:
    """How folder images become equal-sized tensors (see the module docstring for the policy)."""

    size: int | None = None  # None: native size (all images must match)
    mode: Literal["center_crop", "resize_crop", "resize"] = "center_crop"
    channels: Literal[1, 3] = 3

    def __post_init__(self) -> None:
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if self.mode not in ("center_crop", "resize_crop", "resize"):
            raise ValueError(f"unknown mode {self.mode!r}: use center_crop, resize_crop or resize")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    def apply(self, img: Image.Image) -> np.ndarray:
        """A decoded image -> uint8 array (C, H, W)."""
        img = img.convert("RGB" if self.channels == 3 else "L")
        s = self.size
        if s is not None:
            w, h = img.size
            if self.mode == "resize":
                img = img.resize((s, s), Image.BILINEAR)
            else:
                if self.mode == "resize_crop":
                    k = s / min(w, h)
                    img = img.resize((max(s, round(w * k)), max(s, round(h * k))), Image.BILINEAR)
                w, h = img.size
                left, top = (w - s) // 2, (h - s) // 2
                img = img.crop((left, top, left + s, top + s))
        arr = np.asarray(img, dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


class ImageSource:
    """N images of one distribution (one class), read on demand and cached once decoded.

    Build it with :meth:`from_folder`, :meth:`from_tensor` or :meth:`from_generator`. ``get(indices)`` returns
    float32 ``(n, C, H, W)``; with ``cache=True`` each image is decoded / generated once and kept in memory
    (uint8 for folders), so later epochs and other classifiers of a sweep read it from RAM.
    """

    def __init__(
        self,
        name: str,
        num_images: int,
        load_fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        storage_dtype: torch.dtype = torch.float32,
        scale: float = 1.0,
        image_shape: tuple[int, int, int] | None = None,
        cache: bool = True,
        description: str = "",
    ) -> None:
        if not name or "=" in name:
            raise ValueError(f"invalid source name {name!r}: use a non-empty name without '='")
        if num_images < 1:
            raise ValueError(f"source {name!r} has no images")
        self.name = name
        self.num_images = int(num_images)
        self.cache = cache
        self.description = description
        self.skipped: list[Path] = []  # unreadable files a folder source left out
        self.paths: list[Path] = []  # a folder source's files, in index order
        self._load = load_fn
        self._storage_dtype = storage_dtype
        self._scale = scale
        self._shape = image_shape
        self._store: torch.Tensor | None = None
        self._have: torch.Tensor | None = None
        self.loads = 0  # images decoded / generated so far (cache misses)

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        return f"ImageSource({self.name!r}, n={self.num_images}, shape={self._shape}, {self.description})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self._shape is None:
            self._shape = tuple(self.get_raw(torch.tensor([0])).shape[1:])
        return self._shape

    def get_raw(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Images in their storage dtype (uint8 for folders), (n, C, H, W) on the CPU."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_images):
            raise IndexError(f"source {self.name!r} has {self.num_images} images; index out of range")
        if not self.cache:
            self.loads += idx.numel()
            return self._checked(self._load(idx), idx.numel())
        if self._have is None:
            self._have = torch.zeros(self.num_images, dtype=torch.bool)
        missing = torch.unique(idx[~self._have[idx]])
        if missing.numel():
            new = self._checked(self._load(missing), missing.numel())
            self.loads += missing.numel()
            if self._store is None:
                self._store = torch.empty((self.num_images, *new.shape[1:]), dtype=new.dtype)
            self._store[missing] = new
            self._have[missing] = True
        assert self._store is not None
        return self._store[idx]

    def get(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Images as float32 (n, C, H, W) (folders: in [0, 1])."""
        raw = self.get_raw(indices)
        return raw.float() * self._scale if self._scale != 1.0 else raw.float()

    def _checked(self, x: torch.Tensor, n: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != n:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"source {self.name!r}: expected a (n={n}, C, H, W) tensor, got {got}")
        if self._shape is None:
            self._shape = tuple(x.shape[1:])
        elif tuple(x.shape[1:]) != self._shape:
            raise ValueError(
                f"source {self.name!r} produced images of shape {tuple(x.shape[1:])} after {self._shape}: "
                "all images of a source must have one size"
            )
        if x.is_floating_point() and not torch.isfinite(x).all():
            raise ValueError(f"source {self.name!r} produced NaN or infinite pixel values")
        return x.detach().to("cpu", self._storage_dtype)

    def clear_cache(self) -> None:
        self._store, self._have = None, None

    # ------------------------------------------------------------------------------------------ constructors

    @classmethod
    def from_tensor(cls, images: torch.Tensor | np.ndarray, name: str) -> ImageSource:
        """Images already in memory: (N, C, H, W) float (any range) or uint8 (read as /255)."""
        x = torch.as_tensor(images)
        if x.ndim != 4:
            raise ValueError(f"source {name!r}: expected (N, C, H, W) images, got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            store, scale = x.contiguous(), 1.0 / 255.0
        else:
            if not x.is_floating_point():
                raise ValueError(f"source {name!r}: images must be float or uint8, got {x.dtype}")
            if not torch.isfinite(x).all():
                raise ValueError(f"source {name!r} holds NaN or infinite pixel values")
            store, scale = x.detach().float().contiguous(), 1.0
        src = cls(
            name,
            x.shape[0],
            lambda idx: store[idx],
            storage_dtype=store.dtype,
            scale=scale,
            image_shape=tuple(store.shape[1:]),
            cache=False,  # already in memory
            description="tensor",
        )
        return src

    @classmethod
    def from_generator(
        cls,
        fn: GeneratorFn,
        num_images: int,
        name: str,
        *,
        seed: int = 0,
        chunk_size: int = 256,
        cache: bool = True,
    ) -> ImageSource:
        """Images from a sampler ``fn(n, generator) -> (n, C, H, W)`` float tensor.

        Image ``i`` is row ``i % chunk_size`` of chunk ``i // chunk_size``, generated with a CPU generator seeded
        from ``(seed, chunk)``: the same images whatever is asked first, with or without the cache, and
        independent images for different seeds.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        base = split_seed(seed, _CHUNK_STREAM)

        def load(idx: torch.Tensor) -> torch.Tensor:
            chunks = torch.unique(idx // chunk_size)
            parts: dict[int, torch.Tensor] = {}
            for c in chunks.tolist():
                n = min(chunk_size, num_images - c * chunk_size)
                out = fn(n, make_generator(split_seed(base, c)))
                if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != n:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(f"generator of source {name!r} must return (n={n}, C, H, W), got {got}")
                parts[c] = out.detach().float().cpu()
            return torch.stack([parts[int(i) // chunk_size][int(i) % chunk_size] for i in idx])

        return cls(name, num_images, load, cache=cache, description=f"generator seed={seed}")

    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike[str],
        name: str | None = None,
        *,
        preprocess: Preprocess | None = None,
        cache: bool = True,
        workers: int | None = None,
        max_images: int | None = None,
    ) -> ImageSource:
        """All png/jpg/jpeg/webp/bmp files under ``root`` (recursive, sorted by path).

        Headers are read once up front: unreadable files are skipped with one warning and counted in
        ``source.skipped``; with ``preprocess.size=None`` mismatched sizes are an error, and so are images smaller
        than a centre crop. Decoding runs in ``workers`` threads (Pillow releases the GIL while decoding).
        """
        pre = preprocess or Preprocess()
        base = Path(root).expanduser()
        if not base.exists():
            raise FileNotFoundError(f"image folder {base} does not exist")
        if not base.is_dir():
            raise NotADirectoryError(f"{base} is not a folder of images")
        files = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise FileNotFoundError(
                f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {base}"
            )
        nworkers = workers if workers is not None else min(8, os.cpu_count() or 1)
        sizes = _map(_read_size, files, nworkers)
        good = [(f, s) for f, s in zip(files, sizes) if s is not None]
        skipped = [f for f, s in zip(files, sizes) if s is None]
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable image file(s) under {base} (first: {skipped[0].name})",
                stacklevel=2,
            )
        if not good:
            raise FileNotFoundError(f"none of the {len(files)} image files under {base} could be read")
        if max_images is not None:
            good = good[:max_images]
        _check_sizes(base, good, pre)
        paths = [f for f, _ in good]
        if pre.size is None:
            w, h = good[0][1]
            shape = (pre.channels, h, w)
        else:
            shape = (pre.channels, pre.size, pre.size)

        def load(idx: torch.Tensor) -> torch.Tensor:
            arrays = _map(lambda i: _decode(paths[i], pre), idx.tolist(), nworkers)
            return torch.from_numpy(np.stack(arrays))

        src = cls(
            name or base.name,
            len(paths),
            load,
            storage_dtype=torch.uint8,
            scale=1.0 / 255.0,
            image_shape=shape,
            cache=cache,
            description=f"folder {base}",
        )
        src.skipped = skipped
        src.paths = paths
        return src

    @classmethod
    def parse(cls, spec: str, *, preprocess: Preprocess | None = None, **kwargs) -> ImageSource:
        """``NAME=PATH`` (or just ``PATH``: the name is the folder's name) where PATH is a folder of images or a
        ``.safetensors`` / ``.pt`` / ``.npy`` file holding an (N, C, H, W) tensor."""
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
        p = Path(path).expanduser()
        if p.is_file():
            return cls.from_tensor(_load_tensor_file(p), name or p.stem)
        return cls.from_folder(p, name or None, preprocess=preprocess, **kwargs)


def _map(fn, items, workers: int):
    if workers <= 1 or len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _read_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _decode(path: Path, pre: Preprocess) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            return pre.apply(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot decode {path}: {exc}; remove or repair the file") from exc


def _check_sizes(base: Path, good: list[tuple[Path, tuple[int, int]]], pre: Preprocess) -> None:
    if pre.size is None:
        first = good[0][1]
        other = next(((f, s) for f, s in good if s != first), None)
        if other is not None:
            raise ValueError(
                f"images under {base} have different sizes (e.g. {good[0][0].name}: {first[0]}x{first[1]}, "
                f"{other[0].name}: {other[1][0]}x{other[1][1]}); pass a size (--size) to crop or resize them"
            )
    elif pre.mode == "center_crop":
        small = [f for f, (w, h) in good if min(w, h) < pre.size]
        if small:
            raise ValueError(
                f"{len(small)} image(s) under {base} are smaller than the {pre.size}px centre crop "
                f"(e.g. {small[0].name}); use a smaller size or mode resize_crop (--resize-mode resize_crop)"
            )


def _load_tensor_file(path: Path) -> torch.Tensor:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        if "images" in tensors:
            return tensors["images"]
        if len(tensors) == 1:
            return next(iter(tensors.values()))
        raise ValueError(f"{path} holds {sorted(tensors)}; name the image tensor 'images'")
    if suffix in (".pt", ".pth"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            obj = obj.get("images", obj)
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f"{path} must hold a tensor or a dict with key 'images'")
        return obj
    if suffix == ".npy":
        return torch.from_numpy(np.load(path, allow_pickle=False))
    raise ValueError(f"unsupported file {path}: use a folder of images, .safetensors, .pt or .npy")


def write_image_folder(
    images: torch.Tensor,
    folder: str | os.PathLike[str],
    prefix: str = "img",
    *,
    path_for: Callable[[str], Path] | None = None,
) -> list[Path]:
    """Write (N, 1|3, H, W) images in [0, 1] as 8-bit PNGs (for tests, demos and exporting generator samples).

    With ``path_for(relative_name)`` (e.g. ``RunContext.output``: its overwrite policy) the paths come from it,
    ``folder`` being the sub-folder name, and each file is written atomically."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1|3, H, W) images, got shape {tuple(x.shape)}")
    out = Path(folder)
    if path_for is None:
        out.mkdir(parents=True, exist_ok=True)
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    paths = []
    for i, a in enumerate(arr):
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        name = f"{prefix}_{i:06d}.png"
        if path_for is None:
            p = out / name
            img.save(p)
        else:
            p = path_for(f"{out.name}/{name}")
            with atomic_path(p) as tmp:
                img.save(tmp, format="PNG")
        paths.append(p)
    return paths


# --------------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitConfig:
    """Per-class (= per-source) counts of a balanced split; every class gets the same numbers.

    The test and validation images are fixed by ``seed`` and the source's name, and the training images are the
    first ``train_per_class`` of the rest, so training sets of growing size are nested (data-scaling curves) and
    share one test set. The validation part drives early stopping; the test part is only read at the end.
    """

    test_per_class: int | None = None  # None: test_fraction of the balanced count
    val_per_class: int | None = None  # None: val_fraction of what the test part leaves
    train_per_class: int | None = None  # None: everything left
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1 or not 0 <= self.val_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
        for k in ("test_per_class", "val_per_class", "train_per_class"):
            v = getattr(self, k)
            if v is not None and v < (0 if k == "val_per_class" else 1):
                raise ValueError(f"{k} must be >= {0 if k == 'val_per_class' else 1}, got {v}")


@dataclass
class Split:
    train: list[torch.Tensor]
    val: list[torch.Tensor]
    test: list[torch.Tensor]

    def counts(self) -> dict[str, int]:
        return {
            "train_per_class": len(self.train[0]),
            "val_per_class": len(self.val[0]),
            "test_per_class": len(self.test[0]),
        }


def balanced_split(sources: Sequence[ImageSource], config: SplitConfig | None = None) -> Split:
    """Disjoint, balanced train / val / test indices for each source (deterministic in seed and names)."""
    cfg = config or SplitConfig()
    check_compatible(sources)
    n = min(len(s) for s in sources)
    test_n = cfg.test_per_class if cfg.test_per_class is not None else max(1, round(cfg.test_fraction * n))
    rest = n - test_n
    val_n = cfg.val_per_class if cfg.val_per_class is not None else round(cfg.val_fraction * rest)
    train_n = cfg.train_per_class if cfg.train_per_class is not None else rest - val_n
    need = test_n + val_n + train_n
    if train_n < 1 or need > n:
        small = min(sources, key=len)
        raise ValueError(
            f"source {small.name!r} has {len(small)} images but the split needs {need} per class "
            f"({train_n} train + {val_n} val + {test_n} test); lower the counts or add images"
        )
    train, val, test = [], [], []
    for s in sources:
        # crc32 spreads names far apart, so (seed + crc) sums of different sources do not collide.
        g = make_generator(split_seed(cfg.seed, zlib.crc32(s.name.encode())))
        p = torch.randperm(len(s), generator=g)
        test.append(p[:test_n].sort().values)
        val.append(p[test_n : test_n + val_n].sort().values)
        train.append(p[test_n + val_n : need])
    return Split(train, val, test)


def check_compatible(sources: Sequence[ImageSource]) -> None:
    """At least two uniquely named sources with one image shape."""
    if len(sources) < 2:
        raise ValueError(f"a distribution classifier needs at least two sources, got {len(sources)}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must be unique, got {names}")
    shapes = {s.name: s.image_shape for s in sources}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"sources have different image shapes ({desc}); give one size (--size) to all")


class LabeledSet:
    """The union of some images of each source, labelled by the source's position (its class index)."""

    def __init__(self, sources: Sequence[ImageSource], indices: Sequence[torch.Tensor]) -> None:
        if len(sources) != len(indices):
            raise ValueError("one index tensor per source")
        self.sources = list(sources)
        self._src = torch.cat([torch.full((len(i),), k, dtype=torch.long) for k, i in enumerate(indices)])
        self._idx = torch.cat([torch.as_tensor(i, dtype=torch.long) for i in indices])
        self.labels = self._src
        self.image_shape = sources[0].image_shape

    def __len__(self) -> int:
        return int(self._idx.numel())

    @property
    def class_names(self) -> list[str]:
        return [s.name for s in self.sources]

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float32, CPU) and labels of the given rows."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        src, idx = self._src[rows], self._idx[rows]
        x = torch.empty((rows.numel(), *self.image_shape), dtype=torch.float32)
        for k, s in enumerate(self.sources):
            m = src == k
            if m.any():
                x[m] = s.get(idx[m])
        return x, src

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(len(self), start + batch_size)))


def split_sets(
    sources: Sequence[ImageSource], split: Split
) -> tuple[LabeledSet, LabeledSet | None, LabeledSet]:
    """(train, val or None when empty, test) labelled sets of a split."""
    val = LabeledSet(sources, split.val) if len(split.val[0]) else None
    return LabeledSet(sources, split.train), val, LabeledSet(sources, split.test)
