"""Motion, temporal consistency and image alignment on videos with known answers."""

from __future__ import annotations

import pytest
import torch
from i2v_leak.metrics import (
    ClipImageEncoder,
    flow_motion_score,
    image_alignment,
    load_raft,
    motion_score,
    temporal_consistency,
)

from gen_common.testing import assert_close


def test_motion_score_known_values():
    still = torch.rand(1, 3, 8, 8).expand(4, -1, -1, -1)
    assert float(motion_score(still)[0]) == 0.0
    ramp = torch.stack([torch.full((3, 8, 8), v) for v in (0.0, 0.1, 0.2, 0.3)])
    assert_close(motion_score(ramp), torch.tensor([0.1 * 255]), rtol=1e-5)
    batch = torch.stack([still, ramp])
    assert motion_score(batch).shape == (2,)
    with pytest.raises(ValueError, match="2 frames"):
        motion_score(torch.zeros(1, 3, 8, 8))


def _encoder():
    pytest.importorskip("transformers")
    from gen_common.testing.video_tiny import tiny_clip_vision_model

    return ClipImageEncoder(tiny_clip_vision_model(seed=0))


def test_clip_consistency_and_alignment():
    enc = _encoder()
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 32, 32, generator=g)
    still = img.expand(3, -1, -1, -1)
    assert_close(temporal_consistency(still, enc), torch.ones(1), rtol=1e-5)
    assert_close(image_alignment(still, img, enc), torch.ones(1), rtol=1e-5)
    noisy = torch.rand(3, 3, 32, 32, generator=g)
    assert float(temporal_consistency(noisy, enc)[0]) < 1 - 1e-4
    assert float(image_alignment(noisy, img, enc)[0]) < 1 - 1e-4
    e = enc(noisy)
    assert_close(e.norm(dim=-1), torch.ones(3), rtol=1e-5)
    with pytest.raises(ValueError, match="conditional images"):
        image_alignment(torch.stack([noisy, noisy]), torch.rand(3, 3, 32, 32), enc)


def test_raft_from_local_weights(tmp_path):
    pytest.importorskip("torchvision")
    from torchvision.models.optical_flow import raft_small

    from gen_common.checkpoint import CheckpointError, save_state_dict

    torch.manual_seed(0)
    sd = raft_small(weights=None).state_dict()
    save_state_dict(sd, tmp_path / "raft.safetensors")
    raft = load_raft(tmp_path / "raft.safetensors", "small")
    loaded = raft.state_dict()
    assert loaded.keys() == sd.keys()
    for k, v in sd.items():  # the weights that were saved, not a fresh initialisation
        assert torch.equal(loaded[k].cpu(), v), k
    assert not raft.training
    v = torch.rand(2, 2, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    out = flow_motion_score(v, raft)
    assert out.shape == (2,)
    assert torch.isfinite(out).all()
    assert (out >= 0).all()
    with pytest.raises(ValueError, match="128"):
        flow_motion_score(v, raft, min_side=64)
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_raft(tmp_path / "bad.pth")


def test_clip_encoder_from_a_saved_folder(tmp_path):
    pytest.importorskip("transformers")
    from gen_common.testing.video_tiny import tiny_clip_image_processor, tiny_clip_vision_model

    model = tiny_clip_vision_model(seed=1)
    model.save_pretrained(tmp_path / "clip")
    tiny_clip_image_processor().save_pretrained(tmp_path / "clip")
    enc = ClipImageEncoder.from_pretrained(tmp_path / "clip")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert_close(enc(x), ClipImageEncoder(model)(x), rtol=1e-5, atol=1e-6)


def test_clip_encoder_on_a_paired_clip_model_gives_its_projected_image_embedding():
    """A full `CLIPModel` goes through `get_image_features` (an output object under transformers 5)."""
    pytest.importorskip("transformers")
    from gen_common.testing.clip_tiny import tiny_clip_model

    model = tiny_clip_model(seed=0)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    enc = ClipImageEncoder(model)
    pixels = (x - enc.mean) / enc.std  # already at the model's 32 px: the resize is the identity
    with torch.no_grad():
        expected = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    assert_close(enc(x), torch.nn.functional.normalize(expected, dim=-1), rtol=1e-5, atol=1e-6)
