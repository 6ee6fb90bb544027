import pytest
import torch

pytest.importorskip("diffusers")
open_clip = pytest.importorskip("open_clip")

from gen_common.testing.diffusers_tiny import clip_tokenizer, tiny_sd_pipeline  # noqa: E402


def test_clip_tokenizer_matches_open_clip(tmp_path):
    tok = clip_tokenizer(tmp_path)
    ref = open_clip.get_tokenizer("ViT-B-32")
    for text in ["a photo of a cat", "An astronaut riding a horse, 4k!!", "naïve café"]:
        ours = tok(text, padding="max_length", max_length=77, truncation=True).input_ids
        theirs = ref([text])[0].tolist()
        n = theirs.index(49407) + 1
        assert ours[:n] == theirs[:n]
    long = tok("word " * 200, truncation=True, padding="max_length").input_ids
    assert len(long) == 77, "model_max_length=77 must truncate long prompts"


def test_tiny_pipeline_runs_offline_and_is_seeded():
    pipe = tiny_sd_pipeline()
    kw = dict(num_inference_steps=2, height=32, width=32, output_type="np")
    a = pipe("a cat", generator=torch.Generator().manual_seed(0), **kw).images
    b = pipe("a cat", generator=torch.Generator().manual_seed(0), **kw).images
    assert a.shape == (1, 32, 32, 3)
    assert (a == b).all()


def test_builders_are_seeded_without_touching_the_global_rng():
    from gen_common.testing.diffusers_tiny import tiny_clip_text_model, tiny_vae

    state = torch.get_rng_state()
    a, b, c = tiny_vae(seed=1), tiny_vae(seed=1), tiny_vae(seed=2)
    assert torch.equal(torch.get_rng_state(), state), "building a tiny model must not reseed the process"
    wa, wb, wc = (m.encoder.conv_in.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    t1, t2 = tiny_clip_text_model(seed=3), tiny_clip_text_model(seed=3)
    assert all(torch.equal(x, y) for x, y in zip(t1.state_dict().values(), t2.state_dict().values()))
    assert torch.equal(torch.get_rng_state(), state)
