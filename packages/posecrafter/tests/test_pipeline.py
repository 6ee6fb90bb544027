import copy

import numpy as np
import posecrafter.pipeline as pl
import pytest
import torch
from posecrafter.pipeline import GenerationConfig, PoseCrafterPipeline
from posecrafter.render import blob_person, render_pose, synthetic_pose_sequence


@pytest.fixture(scope="module")
def pipe(tiny_parts):
    return PoseCrafterPipeline(copy.deepcopy(tiny_parts))


@pytest.fixture(scope="module")
def video():
    poses = synthetic_pose_sequence(3, 32, 32, speed=0.8)
    return np.stack([blob_person(p) for p in poses]), poses


FAST = GenerationConfig(num_inference_steps=2)


def test_inserted_frame_conditions_the_key_frame_and_is_dropped(pipe, video, monkeypatch):
    frames, poses = video
    targets = synthetic_pose_sequence(2, 32, 32, phase=1.6)
    seen = {}
    real_eps, real_sample = pipe.eps, pl.ddim_sample

    def spy_eps(x, t, text, cond, num_frames, key_frame=0, controlnet_scale=1.0):
        seen.setdefault("eps", []).append((x.shape[0], num_frames, key_frame, cond))
        return real_eps(x, t, text, cond, num_frames, key_frame, controlnet_scale)

    def spy_sample(eps_fn, x, sched, cb=None):
        seen["init"] = x.clone()
        return real_sample(eps_fn, x, sched, cb)

    monkeypatch.setattr(pipe, "eps", spy_eps)
    monkeypatch.setattr(pl, "ddim_sample", spy_sample)
    out = pipe("a person", frames, poses, targets, GenerationConfig(num_inference_steps=3, latent_edit=False))
    assert out.frames.shape == (2, 32, 32, 3) and out.latents.shape == (2, 4, 16, 16)
    inv_calls = [c for c in seen["eps"] if c[1] == 1]
    joint = [c for c in seen["eps"] if c[1] == 3]
    assert (
        len(inv_calls) == 3 and len(joint) == 3
    )  # 3 inversion steps (1 frame), 3 joint steps (1 + 2 frames)
    assert joint[0][0] == 6  # uncond and cond copies of the 3-frame video
    key_cond = joint[0][3][0].permute(1, 2, 0).mul(255).round().byte().numpy()
    np.testing.assert_array_equal(key_cond, render_pose(poses[out.reference_index]))
    # every frame starts from the inverted latent (no edits here)
    for k in range(3):
        torch.testing.assert_close(seen["init"][k], out.inverted[0])


def test_output_is_deterministic_and_edits_run(pipe, video):
    frames, poses = video
    targets = synthetic_pose_sequence(2, 32, 32, phase=1.6)
    a = pipe("a person", frames, poses, targets, FAST)
    b = pipe("a person", frames, poses, targets, FAST)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert {r.status for r in a.edits} == {"edited"} and len(a.edits) == 6
    no_edit = pipe(
        "a person", frames, poses, targets, GenerationConfig(num_inference_steps=3, latent_edit=False)
    )
    assert not np.array_equal(no_edit.frames, a.frames)


def test_frame_by_frame_baseline_ignores_other_frames(pipe, video):
    _, poses = video
    cfg = GenerationConfig(num_inference_steps=2, init="noise", insert_training_pose=False, joint=False)
    two = pipe("x", None, None, poses[:2], cfg, torch.Generator().manual_seed(0))
    assert two.frames.shape[0] == 2 and two.reference_index is None


def test_bad_inputs(pipe, video):
    frames, poses = video
    with pytest.raises(ValueError, match="3 training frames but 2 training poses"):
        pipe("x", frames, poses[:2], poses, FAST)
    with pytest.raises(ValueError, match="multiple of 4"):
        pipe("x", frames[:, :30, :30], [p.scaled(30, 30) for p in poses], poses, FAST)
    with pytest.raises(ValueError, match="num_inference_steps"):
        GenerationConfig(num_inference_steps=0)
