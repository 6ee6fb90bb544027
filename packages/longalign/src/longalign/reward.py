"""Reward fine-tuning, stage 2 (paper Sec. 3.3 and App.; official ``unet_reward.py``).

From x_T ~ N(0, I) a 50-step DDIM with classifier-free guidance runs on the grid t = 999, 979, …, 19. Only the steps
``grid[r::10]`` (r uniform in 0..9: five steps) run the UNet with gradients (under checkpointing); every UNet call
sees a detached input, while the DDIM arithmetic (x̂₀ = (x_t − σ_t ε)/α_t, x_{t−20} = α_{t−20} x̂₀ + σ_{t−20} ε) keeps
the graph, so gradients reach the LoRA only through the chosen steps' ε and the linear DDIM chain. The x̂₀
predicted at the last step is decoded and scored by the decomposed preference model; the loss is
0.5 · (1 − mean score) with score = relevant + w · irrelevant (w = 0.3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = [
    "LCM_TIMESTEPS",
    "RewardConfig",
    "RewardObjective",
    "ddim_grid",
    "gradient_steps",
    "lcm_rollout",
    "load_trainable",
    "reward_rollout",
]

LCM_TIMESTEPS = (999, 749, 499, 249)


def ddim_grid(num_train_timesteps: int = 1000, stride: int = 20) -> list[int]:
    """The release's DDIM grid ``range(T − 1, 0, −stride)``: 999, 979, …, 19 for T = 1000, stride 20."""
    return list(range(num_train_timesteps - 1, 0, -stride))


def gradient_steps(grid: Sequence[int], offset: int, every: int = 10) -> list[int]:
    """The timesteps that get gradients: ``grid[offset::every]`` (official ``time_all[rand_start::10]``)."""
    if not 0 <= offset < every:
        raise ValueError(f"offset must be in 0..{every - 1}")
    return list(grid[offset::every])


def _eps_from_output(out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor, kind: str):
    """(ε, x̂₀) from the UNet output under its prediction type (α = √ᾱ, σ = √(1−ᾱ))."""
    if kind == "epsilon":
        return out, (x - s * out) / a
    if kind == "v_prediction":
        return s * x + a * out, a * x - s * out
    raise ValueError(f"prediction type {kind!r} is not supported: use an epsilon or v_prediction UNet")


def reward_rollout(
    unet: Callable[..., Any],
    alphas_cumprod: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    noise: torch.Tensor,
    *,
    grad_at: Sequence[int],
    grid: Sequence[int] | None = None,
    guidance_scale: float = 7.5,
    prediction_type: str = "epsilon",
    use_checkpoint: bool = True,
) -> torch.Tensor:
    """Run the release's DDIM from ``noise`` and return x̂₀ predicted at the last step (B, C, h, w).

    ``unet(x, t, encoder_hidden_states)`` -> output with ``.sample`` (or a tensor); ``cond``/``uncond`` (B, L, D).
    Steps in ``grad_at`` run with gradients (checkpointed when ``use_checkpoint``); all others under no_grad.
    """
    grid = ddim_grid(len(alphas_cumprod)) if grid is None else list(grid)
    grad_set = set(int(t) for t in grad_at)
    if not grad_set <= set(grid):
        raise ValueError(f"gradient steps {sorted(grad_set - set(grid))} are not on the grid")
    b = noise.shape[0]
    ac = alphas_cumprod.to(noise.device, torch.float32)
    embeds = torch.cat([cond, uncond], dim=0)
    stride = grid[0] - grid[1] if len(grid) > 1 else grid[0] + 1

    def call(x_in: torch.Tensor, t_in: torch.Tensor) -> torch.Tensor:
        out = unet(x_in, t_in, embeds)
        return out.sample if hasattr(out, "sample") else (out[0] if isinstance(out, tuple) else out)

    x = noise
    x0 = noise
    for t in grid:
        t_batch = torch.full((2 * b,), t, device=noise.device, dtype=torch.long)
        x_in = x.detach().repeat(2, 1, 1, 1).to(embeds.dtype)  # the UNet input never carries the graph
        if t in grad_set:
            out = (
                checkpoint(call, x_in, t_batch, use_reentrant=False)
                if use_checkpoint
                else call(x_in, t_batch)
            )
        else:
            with torch.no_grad():
                out = call(x_in, t_batch)
        out = out.float()
        out = out[b:] + guidance_scale * (out[:b] - out[b:])
        a, s = ac[t].sqrt(), (1 - ac[t]).sqrt()
        eps, x0 = _eps_from_output(out, x, a, s, prediction_type)
        t_prev = max(t - stride, 0)  # the release clamps t − 20 < 0 to 0 (ᾱ₀, not 1)
        x = ac[t_prev].sqrt() * x0 + (1 - ac[t_prev]).sqrt() * eps
    return x0


def lcm_rollout(
    unet: Callable[..., Any],
    alphas_cumprod: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    renoise: torch.Tensor,
    *,
    timesteps: Sequence[int] = LCM_TIMESTEPS,
    prediction_type: str = "epsilon",
    use_checkpoint: bool = True,
) -> torch.Tensor:
    """The LCM variant (official ``unet_reward_lcm.py``): 4 steps t = 999, 749, 499, 249 without CFG, every step
    with gradients (detached UNet input, checkpointed), x̂₀ re-noised with fresh noise ``renoise[i]`` to the next
    timestep; returns the last x̂₀."""
    if renoise.shape[0] < len(timesteps) - 1:
        raise ValueError(f"renoise needs {len(timesteps) - 1} draws, got {renoise.shape[0]}")
    ac = alphas_cumprod.to(noise.device, torch.float32)

    def call(x_in: torch.Tensor, t_in: torch.Tensor) -> torch.Tensor:
        out = unet(x_in, t_in, cond)
        return out.sample if hasattr(out, "sample") else (out[0] if isinstance(out, tuple) else out)

    x, x0 = noise, noise
    for i, t in enumerate(timesteps):
        t_batch = torch.full((noise.shape[0],), t, device=noise.device, dtype=torch.long)
        x_in = x.detach().to(cond.dtype)
        out = checkpoint(call, x_in, t_batch, use_reentrant=False) if use_checkpoint else call(x_in, t_batch)
        a, s = ac[t].sqrt(), (1 - ac[t]).sqrt()
        _, x0 = _eps_from_output(out.float(), x, a, s, prediction_type)
        if i + 1 < len(timesteps):
            t_next = timesteps[i + 1]
            x = ac[t_next].sqrt() * x0 + (1 - ac[t_next]).sqrt() * renoise[i].to(x0)
    return x0


def load_trainable(module: torch.nn.Module, state: dict[str, torch.Tensor], strict: bool, hint: str) -> None:
    """Copy a checkpoint's tensors into ``module``'s trainable parameters (its state: LoRA, adapter); a checkpoint
    of another run (other names or shapes) is one ``ValueError`` line ending in ``hint``."""
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    missing, extra = set(params) - set(state), set(state) - set(params)
    wrong = [n for n, p in params.items() if n in state and state[n].shape != p.shape]
    if wrong or (strict and (missing or extra)):
        raise ValueError(
            f"the checkpoint does not match this run ({len(missing)} tensors missing, {len(extra)} unexpected, "
            f"{len(wrong)} of another shape, e.g. {(sorted(wrong) or sorted(missing | extra))[:1]}): {hint}, "
            "or train into a fresh --out"
        )
    with torch.no_grad():
        for n, p in params.items():
            if n in state:
                p.copy_(state[n])


@dataclass(frozen=True)
class RewardConfig:
    """Stage-2 settings (official defaults: 50 DDIM steps, CFG 7.5, gradients every 10th step, w = 0.3)."""

    guidance_scale: float = 7.5
    stride: int = 20  # DDIM grid spacing: 50 steps on 1000
    grad_every: int = 10  # gradients at grid[r::grad_every], r uniform in 0..grad_every-1: 5 steps
    reweight: float = 0.3  # w: score = relevant + w · irrelevant
    use_checkpoint: bool = True  # torch checkpoint around each gradient step's UNet call
    unet_checkpointing: bool = True  # the UNet's own gradient checkpointing inside the blocks
    resolution: int | None = None  # image side; None: the UNet's sample_size × the VAE factor
    batch_size: int = (
        8  # the release: 8 per GPU (batch size 1 zeroes the relevant part with the batch direction)
    )
    sampler: str = (
        "ddim"  # "ddim": the 50-step CFG rollout; "lcm": the LCM variant (4 steps, all with gradients)
    )

    def __post_init__(self) -> None:
        if self.stride < 1 or self.grad_every < 1:
            raise ValueError("stride and grad_every must be >= 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.sampler not in ("ddim", "lcm"):
            raise ValueError(f"unknown sampler {self.sampler!r}: use 'ddim' or 'lcm'")


class RewardObjective(torch.nn.Module):
    """One training step's loss for `gen_common.training.train`: ``objective(batch, generator)`` runs the rollout,
    decodes x̂₀, scores it and returns ``(loss, metrics)``.

    Holds the pipeline's UNet (with a trainable LoRA), VAE, a `SegmentEncoder` and a `DecomposedPreference`. Its
    ``state_dict`` is the trainable (LoRA) tensors only, so checkpoints stay small and resume exactly.
    """

    def __init__(self, pipe: Any, encoder: Any, preference: Any, config: RewardConfig) -> None:
        super().__init__()
        self.unet = pipe.unet
        self.vae = pipe.vae
        self.preference = preference
        self.encoder = encoder
        self.config = config
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.float()
        self.prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")
        self.num_train_timesteps = int(pipe.scheduler.config.num_train_timesteps)
        self.vae.requires_grad_(False)
        self._uncond: torch.Tensor | None = None
        if config.unet_checkpointing and hasattr(self.unet, "enable_gradient_checkpointing"):
            self.unet.enable_gradient_checkpointing()
        vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.latent_side = (
            (config.resolution // vae_factor) if config.resolution else self.unet.config.sample_size
        )

    # Only the trainable tensors are state: the frozen model comes from its own files.
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):  # type: ignore[override]
        load_trainable(self, state, strict, "resume with the same LoRA flags (--rank, ...)")

    def train(self, mode: bool = True) -> RewardObjective:
        # As the release: the UNet (and so its LoRA dropout) is in training mode during the whole rollout,
        # no-grad steps included; the VAE and the preference model stay in eval mode.
        super().train(mode)
        self.vae.eval()
        self.preference.model.eval()
        return self

    def make_batch(self, prompts: Sequence[str], step: int, generator: torch.Generator) -> dict[str, Any]:
        """The step's prompts, x_T and gradient offset, all from ``generator`` (so resuming is exact)."""
        idx = torch.randint(0, len(prompts), (self.config.batch_size,), generator=generator).tolist()
        c = self.unet.config.in_channels
        noise = torch.randn(
            self.config.batch_size, c, self.latent_side, self.latent_side, generator=generator
        )
        offset = int(torch.randint(0, self.config.grad_every, (1,), generator=generator))
        batch = {"prompts": [prompts[i] for i in idx], "noise": noise, "offset": offset}
        if self.config.sampler == "lcm":
            batch["renoise"] = torch.randn(len(LCM_TIMESTEPS) - 1, *noise.shape, generator=generator)
        return batch

    def rollout(
        self, prompts: Sequence[str], noise: torch.Tensor, offset: int, renoise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] decoded from the last step's x̂₀ (differentiable)."""
        dtype = next(self.unet.parameters()).dtype
        cond = self.encoder(list(prompts)).embeds.to(noise.device, dtype)
        if self.config.sampler == "lcm":
            if renoise is None:
                raise ValueError("the LCM rollout needs the batch's renoise draws (make_batch makes them)")
            x0 = lcm_rollout(
                self.unet,
                self.alphas_cumprod,
                cond,
                noise,
                renoise,
                prediction_type=self.prediction_type,
                use_checkpoint=self.config.use_checkpoint,
            )
            return self._decode(x0)
        if self._uncond is None or self._uncond.shape[1:] != cond.shape[1:]:
            self._uncond = self.encoder([""]).embeds.to(noise.device, dtype)
        uncond = self._uncond.expand(cond.shape[0], -1, -1)
        grid = ddim_grid(self.num_train_timesteps, self.config.stride)
        x0 = reward_rollout(
            self.unet,
            self.alphas_cumprod,
            cond,
            uncond,
            noise,
            grad_at=gradient_steps(grid, offset, self.config.grad_every),
            grid=grid,
            guidance_scale=self.config.guidance_scale,
            prediction_type=self.prediction_type,
            use_checkpoint=self.config.use_checkpoint,
        )
        return self._decode(x0)

    def _decode(self, x0: torch.Tensor) -> torch.Tensor:
        vae_dtype = next(self.vae.parameters()).dtype
        img = self.vae.decode((x0 / self.vae.config.scaling_factor).to(vae_dtype)).sample
        return (img.float() * 0.5 + 0.5).clamp(0, 1)

    def forward(self, batch: dict[str, Any], generator: torch.Generator | None = None):
        images = self.rollout(batch["prompts"], batch["noise"], int(batch["offset"]), batch.get("renoise"))
        out = self.preference(images, batch["prompts"], weight=self.config.reweight, generator=generator)
        loss = 0.5 * (1.0 - out.score.mean())
        return loss, {
            "score": float(out.score.detach().mean()),
            "relevant": float(out.relevant.detach().mean()),
            "irrelevant": float(out.irrelevant.detach().mean()),
        }
