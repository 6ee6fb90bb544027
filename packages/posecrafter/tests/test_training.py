import copy

import numpy as np
import pytest
import torch
from posecrafter.loading import tiny_components
from posecrafter.pipeline import GenerationConfig, PoseCrafterPipeline, load_posecrafter_weights
from posecrafter.render import blob_person, synthetic_pose_sequence
from posecrafter.training import OneShotConfig, OneShotModel, train_one_shot


@pytest.fixture(scope="module")
def video():
    poses = synthetic_pose_sequence(3, 32, 32, speed=0.8)
    return np.stack([blob_person(p) for p in poses]), poses


def _cfg(steps, **kw):
    return OneShotConfig(
        steps=steps, lr=1e-3, checkpoint_every=0, mixed_precision="no", gradient_checkpointing=False, **kw
    )


def _trained(pipe):
    return {n: p.detach().clone() for n, p in {**{f"unet.{k}": v for k, v in pipe.c.unet.named_parameters()},
            **{f"controlnet.{k}": v for k, v in pipe.c.controlnet.named_parameters()}}.items()}  # fmt: skip


def test_only_the_precursor_set_changes_and_frozen_grads_stay_none(tiny_parts, video):
    frames, poses = video
    pipe = PoseCrafterPipeline(copy.deepcopy(tiny_parts))
    before = _trained(pipe)
    res = train_one_shot(pipe, frames, poses, "a person", _cfg(2), device="cpu", progress=False)
    after = _trained(pipe)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(("attn1.to_out" in n) or ("_temp" in n) for n in changed)
    assert any("conv_temp" in n for n in changed)  # the zero conv starts to learn
    assert np.isfinite(res.final_loss)
    grads = [
        n
        for n, p in pipe.c.unet.named_parameters()
        if p.grad is not None and "temp" not in n and "attn1.to_out" not in n
    ]
    assert grads == []  # no gradient piles up in frozen parameters


def test_gradient_checkpointing_gives_the_same_gradients(tiny_parts, video):
    frames, poses = video
    pipe = PoseCrafterPipeline(copy.deepcopy(tiny_parts))
    lat = pipe.encode_frames(frames)
    m = OneShotModel(pipe.c.unet, pipe.c.controlnet, lat, pipe.encode_prompt("p"), pipe.condition(poses, 32, 32),
                     pipe.c.scheduler.alphas_cumprod, OneShotConfig().trainable)  # fmt: skip
    for p in m.trained.values():  # make the zero conv non-zero so every trained tensor gets a gradient
        torch.nn.init.normal_(p, std=0.02)
    m.train()
    noise, t = torch.randn(lat.shape, generator=torch.Generator().manual_seed(0)), torch.tensor([400])
    grads = []
    for ckpt in (False, True):
        (pipe.c.unet.enable_gradient_checkpointing if ckpt else pipe.c.unet.disable_gradient_checkpointing)()
        (
            pipe.c.controlnet.enable_gradient_checkpointing
            if ckpt
            else pipe.c.controlnet.disable_gradient_checkpointing
        )()
        for p in m.trained.values():
            p.grad = None
        m(noise, t).backward()
        grads.append({n: p.grad.clone() for n, p in m.trained.items()})
    assert all(g.abs().sum() > 0 for g in grads[0].values())
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-4, atol=1e-7)


def test_resume_is_exact_and_weights_reload_into_a_stock_pipeline(tiny_parts, video, tmp_path):
    frames, poses = video
    full = PoseCrafterPipeline(copy.deepcopy(tiny_parts))
    train_one_shot(
        full, frames, poses, "a person", _cfg(3), out_dir=tmp_path / "a", device="cpu", progress=False
    )
    split = PoseCrafterPipeline(copy.deepcopy(tiny_parts))
    r1 = train_one_shot(
        split,
        frames,
        poses,
        "a person",
        _cfg(3),
        out_dir=tmp_path / "b",
        device="cpu",
        progress=False,
        stop_after=2,
    )
    assert r1.steps == 2 and not (tmp_path / "b" / "weights").exists()
    again = PoseCrafterPipeline(copy.deepcopy(tiny_parts))
    r2 = train_one_shot(
        again, frames, poses, "a person", _cfg(3), out_dir=tmp_path / "b", device="cpu", progress=False
    )
    assert r2.resumed_from == 2
    a, b = _trained(full), _trained(again)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any("conv_temp" in n and a[n].abs().sum() > 0 for n in a)  # the reload below is not of zeros
    # a stock SD + ControlNet (fresh components, same base weights) with the saved modules generates identically
    stock = tiny_components(seed=0)
    load_posecrafter_weights(stock.unet, stock.controlnet, tmp_path / "a" / "weights")
    reloaded = PoseCrafterPipeline(stock)
    targets = synthetic_pose_sequence(2, 32, 32, phase=1.0)
    cfg = GenerationConfig(num_inference_steps=2)
    np.testing.assert_array_equal(reloaded("a person", frames, poses, targets, cfg).frames,
                                  full("a person", frames, poses, targets, cfg).frames)  # fmt: skip
