"""The two training stages on gen_common's loop (accelerate, bf16 on CUDA, atomic checkpoints, exact resume).

- `train_reward` (stage 2, official ``unet_reward.py``): optional earlier LoRAs merged into the UNet (stage 1, as
  the release does), then a fresh LoRA trained on the reweighted preference reward (`longalign.reward`).
- `train_align` (stage 1, official ``unet_align_ct5.py``): ε-MSE (or v-MSE) on (image, long caption) pairs with
  segment-encoded captions and caption dropout 0.1, LoRA on the same targets, and, given a `T5Branch`, its adapter
  trained together with the LoRA as the release does: one AdamW over LoRA + adapter (same lr), one gradient-norm
  clip over both, T5 and CLIP frozen, a dropped caption is "" for both branches, the 240 adapter rows concatenated
  after the 240 CLIP rows.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gen_common.training import TrainConfig, TrainResult, latest_checkpoint, train
from longalign.lora import LoraSpec, add_lora, load_lora, load_release_lora, merge_release_lora
from longalign.reward import RewardConfig, RewardObjective, load_trainable
from longalign.segments import SegmentEncoder
from longalign.t5branch import T5Branch

__all__ = ["ALIGN_TRAIN", "REWARD_TRAIN", "AlignObjective", "merge_loras", "train_align", "train_reward"]

# The release's optimiser settings: AdamW lr 3e-5, weight decay 1e-2, grad clip 0.3, constant with warmup.
REWARD_TRAIN = TrainConfig(steps=100, lr=3e-5, weight_decay=1e-2, grad_clip=0.3, warmup_steps=0, log_every=1)
ALIGN_TRAIN = TrainConfig(steps=1000, lr=3e-5, weight_decay=1e-2, grad_clip=0.3, warmup_steps=0, log_every=10)


def merge_loras(pipe: Any, paths: Sequence[str | os.PathLike[str]]) -> Any:
    """Merge earlier LoRAs into the UNet's weights in sequence (release ``lora_vis.pt`` files or diffusers LoRA
    files/folders), as the release does before stage 2 and for LongSD sampling."""
    for i, path in enumerate(paths):
        p = Path(path)
        if p.suffix == ".pt":
            merge_release_lora(pipe.unet, load_release_lora(p))
        else:
            load_lora(pipe, p, adapter_name=f"merged_{i}")  # unloaded right after fusing
            pipe.fuse_lora(components=["unet"], lora_scale=1.0)
            pipe.unload_lora_weights()
    return pipe


def check_resume(out_dir: str | os.PathLike[str] | None, settings: dict[str, Any]) -> None:
    """Refuse (one ``ValueError`` line) to resume a checkpoint in ``out_dir`` written under other ``settings`` (the
    reward, LoRA or caption-dropout settings kept in its trainer state): that would silently mix two runs."""
    ckpt = latest_checkpoint(Path(out_dir)) if out_dir is not None else None
    if ckpt is None:
        return
    try:
        saved = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the training loop reports an unreadable checkpoint itself
    diffs = []
    for key, now in json.loads(json.dumps(settings)).items():
        before = saved.get(key, now)
        if isinstance(now, dict) and isinstance(before, dict):
            diffs += [f"{key}.{f} {before[f]!r} -> {v!r}" for f, v in now.items() if before.get(f, v) != v]
        elif before != now:
            diffs.append(f"{key} {before!r} -> {now!r}")
    if diffs:
        raise ValueError(
            f"{ckpt} was trained with other settings ({'; '.join(diffs[:3])}): resume with the same flags, "
            "or train into a fresh --out"
        )


def train_reward(
    pipe: Any,
    prompts: Sequence[str],
    preference: Any,
    *,
    reward: RewardConfig | None = None,
    lora: LoraSpec | None = None,
    config: TrainConfig = REWARD_TRAIN,
    encoder: SegmentEncoder | None = None,
    init_loras: Sequence[str | os.PathLike[str]] = (),
    out_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    stop_after: int | None = None,
) -> tuple[RewardObjective, TrainResult]:
    """Stage 2: fine-tune a fresh LoRA on ``pipe``'s UNet with the reweighted reward (in place; save it with
    `longalign.lora.save_lora`). Checkpoints (LoRA + optimizer + RNG) go to ``out_dir`` and resume exactly."""
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise ValueError("no prompts to train on: give at least one non-empty prompt")
    reward = reward or RewardConfig()
    check_resume(out_dir, {"reward": vars(reward), "lora": vars(lora or LoraSpec())})
    merge_loras(pipe, init_loras)
    add_lora(pipe.unet, lora or LoraSpec(), seed=config.seed)
    enc = encoder or SegmentEncoder.from_pipe(pipe)
    if (
        getattr(preference, "gather", None) is None
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
    ):
        from accelerate.utils import gather

        preference.gather = gather  # the common direction: mean of per-process means, as the release
    objective = RewardObjective(pipe, enc, preference, reward)
    result = train(
        objective,
        lambda model, batch, gen: model(batch, gen),
        lambda step, gen: objective.make_batch(prompts, step, gen),
        config,
        out_dir=out_dir,
        device=device,
        progress=progress,
        stop_after=stop_after,
        extra_state={"reward": vars(reward), "lora": vars(lora or LoraSpec())},
    )
    return objective, result


class AlignObjective(torch.nn.Module):
    """Stage 1's loss: MSE between the UNet's output and its target (ε, or v for v-prediction UNets) at a uniform
    timestep, with segment-encoded captions dropped to "" with probability ``caption_dropout``. With a ``branch``
    (T5 + adapter) the context is [CLIP segment rows; adapter(T5(caption))] and the adapter trains (it is the
    ``adapter`` submodule, so checkpoints hold its weights and the optimizer its moments); T5 stays frozen."""

    def __init__(
        self,
        pipe: Any,
        encoder: SegmentEncoder,
        caption_dropout: float = 0.1,
        branch: T5Branch | None = None,
    ) -> None:
        super().__init__()
        self.unet, self.vae, self.scheduler = pipe.unet, pipe.vae, pipe.scheduler
        self.encoder = encoder
        self.caption_dropout = caption_dropout
        self.vae.requires_grad_(False)
        encoder.text_encoder.requires_grad_(False)  # CLIP is frozen (the release: requires_grad_(False))
        self.branch = branch
        if branch is not None:
            branch.encoder.requires_grad_(False)
            self.adapter = branch.adapter
            # trained in float32 like the LoRA, whatever the UNet's dtype
            self.adapter.float().requires_grad_(True)

    state_dict = RewardObjective.state_dict

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):  # type: ignore[override]
        has = "with" if any(k.startswith("adapter.") for k in state) else "without"
        hint = f"it was trained {has} the T5 adapter; resume with the same --t5/--adapter and LoRA flags"
        load_trainable(self, state, strict, hint)

    def train(self, mode: bool = True) -> AlignObjective:
        # The adapter's own dropout is active in training (the release calls adapter.train()); T5, CLIP and the VAE
        # stay in eval mode (the release calls .eval() on them).
        super().train(mode)
        self.vae.eval()
        if self.branch is not None:
            self.branch.encoder.eval()
        return self

    def context(self, captions: Sequence[str]) -> torch.Tensor:
        """The UNet's cross-attention context: CLIP segment rows (no gradients), then the adapter rows (with)."""
        with torch.no_grad():
            cond = self.encoder(list(captions)).embeds
        if self.branch is None:
            return cond
        extra = self.branch.encode(captions)
        return torch.cat([cond, extra.to(cond.device, cond.dtype)], dim=1)

    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None):
        images, captions = batch["images"], batch["captions"]
        with torch.no_grad():
            dtype = next(self.vae.parameters()).dtype
            latents = self.vae.encode((images * 2 - 1).to(dtype)).latent_dist.sample(generator=None)
            latents = latents.float() * self.vae.config.scaling_factor
        cond = self.context(captions).to(latents.device)
        noise, t = batch["noise"].to(latents), batch["t"].to(latents.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        pred = self.unet(noisy.to(cond.dtype), t, cond).sample.float()
        if self.scheduler.config.get("prediction_type", "epsilon") == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return F.mse_loss(pred, target)


def train_align(
    pipe: Any,
    images: torch.Tensor,
    captions: Sequence[str],
    *,
    batch_size: int = 4,
    caption_dropout: float = 0.1,
    lora: LoraSpec | None = None,
    config: TrainConfig = ALIGN_TRAIN,
    encoder: SegmentEncoder | None = None,
    branch: T5Branch | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    stop_after: int | None = None,
) -> tuple[AlignObjective, TrainResult]:
    """Stage 1: LoRA (and, with ``branch``, the T5 adapter) on ε-MSE over (image, long caption) pairs; ``images``
    (N, 3, H, W) in [0, 1]. The LoRA is trained in place on ``pipe.unet`` and the adapter in place on
    ``branch.adapter`` (save them with `longalign.lora.save_lora` and `longalign.t5branch.save_adapter`). An
    ``encoder`` that carries a branch of its own trains that branch's adapter."""
    if images.ndim != 4 or images.shape[0] != len(captions):
        raise ValueError(
            f"{images.shape[0] if images.ndim == 4 else '?'} images for {len(captions)} captions"
        )
    if images.shape[0] == 0:
        raise ValueError("no training pairs")
    encoder = encoder or SegmentEncoder.from_pipe(pipe)
    if encoder.branch is not None:
        if branch is not None and branch is not encoder.branch:
            raise ValueError("two T5 branches given: pass it as branch= or inside the encoder, not both")
        branch, encoder = encoder.branch, copy.copy(encoder)
        encoder.branch = None  # its rows are added by the objective, with gradients through the adapter
    check_resume(out_dir, {"caption_dropout": caption_dropout, "lora": vars(lora or LoraSpec())})
    add_lora(pipe.unet, lora or LoraSpec(), seed=config.seed)
    objective = AlignObjective(pipe, encoder, caption_dropout, branch)
    n_train = int(pipe.scheduler.config.num_train_timesteps)

    def batch_fn(step: int, gen: torch.Generator) -> dict[str, Any]:
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen)
        drop = torch.rand(batch_size, generator=gen) < caption_dropout
        # a dropped caption is "" for both branches (the release drops it before encoding)
        caps = ["" if d else captions[int(i)] for i, d in zip(idx, drop)]
        side = images.shape[-1] // 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        noise = torch.randn(batch_size, pipe.unet.config.in_channels, side, side, generator=gen)
        t = torch.randint(0, n_train, (batch_size,), generator=gen)
        return {"images": images[idx], "captions": caps, "noise": noise, "t": t}

    adapter_cfg = None
    if branch is not None:
        adapter_cfg = {k: v for k, v in branch.adapter.config.items() if not k.startswith("_")}
    result = train(
        objective,
        lambda model, batch, gen: model(batch, gen),
        batch_fn,
        config,
        out_dir=out_dir,
        device=device,
        progress=progress,
        stop_after=stop_after,
        extra_state={
            "caption_dropout": caption_dropout,
            "adapter": adapter_cfg,
            "lora": vars(lora or LoraSpec()),
        },
    )
    return objective, result
