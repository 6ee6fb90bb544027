"""The tour's demo: synthetic blob people on a tiny offline SD + ControlNet.

1. The face/hand affine edit: least squares from a reference pose's landmarks to a target pose's, scaled to the
   latent grid; Gaussian blobs placed at the source landmarks of a latent land on the target landmarks.
2. DDIM inversion round trip with analytic ε-models: the exact ε of a Gaussian (error from the ε change between
   neighbouring levels) and an x-independent ε (exact).
3. One-shot tuning for a few steps, then a short generated strip following new poses (reference frame, inverted
   initialisation, inserted training pose, latent edit).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gen_common.demo import DemoContext, DemoResult, Table

SIZE = {
    "small": dict(px=32, frames=3, targets=2, train_steps=3, steps=4),
    "large": dict(px=64, frames=8, targets=8, train_steps=300, steps=50),
}


def _affine_blobs(ref, tgt, factor: int, hw: int) -> tuple[float, np.ndarray]:
    """Max distance (latent px) between warped blob peaks and the target landmarks, over face and hands."""
    from posecrafter.affine import PARTS, fit_affine, latent_affine, pixel_to_latent, warp_latent

    worst = 0.0
    ys, xs = torch.meshgrid(
        torch.arange(hw, dtype=torch.float64), torch.arange(hw, dtype=torch.float64), indexing="ij"
    )
    for part in PARTS:
        s, d = ref.part(part)[:, :2], tgt.part(part)[:, :2]
        a = fit_affine(s, d)
        idx = [0, len(s) // 2, len(s) - 1]  # three landmarks of the part, one blob each
        blobs = torch.stack(
            [torch.exp(-((xs - q[0]) ** 2 + (ys - q[1]) ** 2) / 2) for q in pixel_to_latent(s[idx], factor)]
        ).float()
        warped = warp_latent(blobs, latent_affine(a, factor))
        for k, q in enumerate(pixel_to_latent((s[idx] @ a[:, :2].T) + a[:, 2], factor)):
            py, px = divmod(int(warped[k].argmax()), hw)
            worst = max(worst, float(np.hypot(px - q[0], py - q[1])))
    return worst, a


def run_demo(ctx: DemoContext) -> DemoResult:
    from posecrafter.ddim import DDIMSchedule, ddim_invert, ddim_sample
    from posecrafter.loading import tiny_components
    from posecrafter.pipeline import GenerationConfig, PoseCrafterPipeline
    from posecrafter.render import pose_images, synthetic_clip, synthetic_pose_sequence
    from posecrafter.training import OneShotConfig, train_one_shot
    from posecrafter.video_io import write_gif, write_strip

    cfg = SIZE.get(ctx.scale, SIZE["small"])
    t0 = time.perf_counter()
    px = cfg["px"]
    frames, poses = synthetic_clip(cfg["frames"], px, px, seed=ctx.seed)
    targets = synthetic_pose_sequence(cfg["targets"], px, px, phase=1.3, speed=0.7, drift=0.1)

    pipe = PoseCrafterPipeline(tiny_components(ctx.seed).to(ctx.device), seed=ctx.seed)
    # 1. affine edit on SD's latent grid (factor 8, a 256-px canvas: 32 latent px, the parts away from the edges)
    big_ref, big_tgt = poses[0].scaled(256, 256), targets[-1].scaled(256, 256)
    blob_err, _ = _affine_blobs(big_ref, big_tgt, 8, 32)

    # 2. inversion round trips
    sched = DDIMSchedule.from_scheduler(pipe.c.scheduler, 50)
    mu, s2 = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.25

    def eps(x, t):
        a = float(sched.alphas_cumprod[t])
        return (1 - a) ** 0.5 * (x - a**0.5 * mu) / (a * s2 + 1 - a)

    x0 = torch.tensor([1.4, -0.9], dtype=torch.float64)
    analytic_err = float((ddim_sample(eps, ddim_invert(eps, x0, sched)[-1], sched) - x0).abs().max())
    v = torch.tensor([0.3, -1.2], dtype=torch.float64)

    def eps_const(x, t):  # ε independent of x: inversion and sampling are exact inverses
        return torch.sin(torch.tensor(t / 100.0, dtype=torch.float64)) * v

    exact_err = float((ddim_sample(eps_const, ddim_invert(eps_const, x0, sched)[-1], sched) - x0).abs().max())

    # 3. one-shot tuning and generation
    res = train_one_shot(
        pipe, frames, poses, "a person",
        OneShotConfig(steps=cfg["train_steps"], lr=1e-3, checkpoint_every=0, gradient_checkpointing=False),
        device=ctx.device, progress=ctx.progress,
    )  # fmt: skip
    out = pipe("a person", frames, poses, targets, GenerationConfig(num_inference_steps=cfg["steps"]))
    strip = write_strip([pose_images(targets), out.frames, frames], ctx.path("posecrafter_strip.png"))
    gif = write_gif(out.frames, ctx.path("posecrafter.gif"))
    edited = sum(r.status == "edited" for r in out.edits)
    secs = time.perf_counter() - t0
    metrics = {
        "affine_blob_peak_error_latent_px": blob_err,
        "ddim_round_trip_error_analytic": analytic_err,
        "ddim_round_trip_error_x_independent_eps": exact_err,
        "train_loss_first": res.history[0]["loss"] if res.history else float("nan"),
        "train_loss_last": res.final_loss,
        "reference_frame": out.reference_index,
        "edited_parts": edited,
        "seconds": secs,
    }
    table = Table(
        "Latent edits (frame, part, status)",
        ["frame", "part", "status"],
        [[r.frame, r.part, r.status] for r in out.edits],
    )
    return DemoResult(
        title="PoseCrafter: one-shot video following poses (tiny offline model, synthetic people)",
        summary=(
            f"Affine edit: warped landmark blobs land {blob_err:.2f} latent px from their targets; DDIM inversion "
            f"round trip error {analytic_err:.1e} with the exact ε of a Gaussian and {exact_err:.0e} with an "
            f"x-independent ε (50 steps); {cfg['train_steps']} tuning steps, then {len(out.frames)} frames from reference "
            f"frame {out.reference_index} with {edited} face/hand edits."
        ),
        metrics=metrics,
        tables=[table],
        figures=[strip, gif],
        headline={
            "claim": "one-shot tuning of temporal modules, reference-frame inversion, pose insertion and affine "
            "face/hand latent edits give pose-following personalised video",
            "paper": "PoseCrafter beats baselines pre-trained on large video sets on 8 metrics (TikTok, TED)",
            "measured": f"affine edit lands landmarks {blob_err:.2f} latent px from targets; DDIM inversion round "
            f"trip {exact_err:.0e} (x-independent ε); {len(out.frames)} frames from reference frame "
            f"{out.reference_index}",
            "reproduces": None,
            "reason": "the building blocks are checked exactly; video quality needs SD 1.5 + ControlNet OpenPose "
            "weights, real videos and a GPU (tiny random model and blob people here)",
        },
        captions={
            strip.name: "Generated frames following the target poses (tiny random model: look at the "
            "structure, not the quality)."
        },
    )
