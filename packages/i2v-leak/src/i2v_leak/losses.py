"""Training losses with TimeNoise on the condition (Sec. 5), for EDM (SVD) and DDPM image-to-video models.

Where the noise goes follows the paper's models: SVD's conditional VAE latent (concatenated to every frame), with
β_s also given to the UNet as ``noise_aug_strength``; DynamiCrafter's concatenated image latent; VideoCrafter1's
CLIP image embedding. `ddpm_timenoise_loss` takes whichever tensor the model's condition is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from i2v_leak.timenoise import TimeNoise

__all__ = ["ddpm_timenoise_loss", "edm_v_preconditioning", "svd_timenoise_loss"]


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=dev, dtype=torch.float32).to(like.device)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=dev, dtype=torch.float32).to(like.device)


def edm_v_preconditioning(
    sigma: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD's EDM preconditioning with σ_data = 1 and v-prediction: c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1),
    c_in = 1/√(σ²+1), c_noise = ¼ ln σ (the timestep diffusers' Euler scheduler feeds the SVD UNet)."""
    s2 = sigma**2 + 1
    return 1 / s2, -sigma / s2.sqrt(), 1 / s2.sqrt(), 0.25 * sigma.log()


def svd_timenoise_loss(
    unet: Any,
    latents: torch.Tensor,
    cond_latents: torch.Tensor,
    image_embeds: torch.Tensor,
    timenoise: TimeNoise | None,
    generator: torch.Generator | None = None,
    *,
    fps_id: float = 2.0,
    motion_bucket_id: float = 20.0,
    P_mean: float = -1.2,
    P_std: float = 1.2,
    train_sigma_max: float = 700.0,
    cfg_dropout: float = 0.1,
    weight_sigma_data: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """EDM denoising loss for SVD with TimeNoise on the conditional latent (Sec. 5; official ``EDMLossTimeNoise``).

    latents: scaled VAE latents of the clip, (B, F, C, h, w); cond_latents: the *unscaled* VAE latent of the
    conditional frame, (B, C, h, w) (what the SVD pipeline concatenates); image_embeds: CLIP image embeddings
    (B, 1, D). σ = exp(P_mean + P_std·n); the condition gets c̃ = c + β_s ε with β_s ~ TimeNoise(t = σ/700),
    and β_s is the ``noise_aug_strength`` entry of the added time ids [fps_id, motion_bucket_id, β_s].
    ``fps_id`` is the value the UNet sees (diffusers' pipeline feeds fps − 1). With ``timenoise=None`` the
    condition stays clean and the strength is 0 (plain fine-tuning).

    The loss weight is EDM's λ(σ) = (σ² + σ_d²)/(σ σ_d)² (Karras et al. 2022, Table 1) with σ_d =
    ``weight_sigma_data``. The default 1 is the value SVD's preconditioning uses (c_out = −σ/√(σ² + 1)), which
    makes λ·c_out² = 1, i.e. a unit-weighted loss on the network output; the official ``train.yaml`` sets
    ``sigma_data: 1`` too. (``EDMLossTimeNoise``'s own default is 0.5, which with its σ_d = 1 preconditioning
    would up-weight large σ by up to 4×, ratio (4σ² + 1)/(σ² + 1); ``weight_sigma_data=0.5`` gives that.)

    Differences from the official code, on purpose: ε on the condition is N(0, I) per element (the official SVD
    loss draws one scalar per sample and shifts the whole latent, unlike its DynamiCrafter/VideoCrafter code and
    the paper's c + β_s ε); classifier-free dropout is per sample, drawn from ``generator`` (official: one coin
    for the whole batch); the UNet's fps id is what the caller passes (`finetune_svd` passes fps − 1 as diffusers'
    pipeline does at inference; the official script trains on the raw fps 3 but samples with fps 5, i.e. id 4).
    """
    if not weight_sigma_data > 0:
        raise ValueError(f"weight_sigma_data must be > 0, got {weight_sigma_data}")
    b = latents.shape[0]
    if latents.ndim != 5 or cond_latents.shape != (b, *latents.shape[2:]):
        raise ValueError(
            f"expected latents (B, F, C, h, w) and cond_latents (B, C, h, w), got {tuple(latents.shape)} "
            f"and {tuple(cond_latents.shape)}"
        )
    x0 = latents.float()
    sigma = (P_mean + P_std * _randn((b,), generator, x0)).exp()
    noise = _randn(tuple(x0.shape), generator, x0)
    sig = sigma.view(b, 1, 1, 1, 1)
    noisy = x0 + sig * noise
    c_skip, c_out, c_in, c_noise = edm_v_preconditioning(sig)

    cond = cond_latents.float()
    if timenoise is not None:
        t = (sigma / train_sigma_max).clamp(0, 1)
        cond, beta = timenoise.apply(cond, t, generator)
    else:
        beta = torch.zeros(b, device=x0.device)
    embeds = image_embeds
    if cfg_dropout > 0:
        keep = (_rand((b,), generator, x0) >= cfg_dropout).float()
        cond = cond * keep.view(b, 1, 1, 1)
        embeds = embeds * keep.view(b, *([1] * (embeds.ndim - 1))).to(embeds.dtype)

    f = x0.shape[1]
    model_in = torch.cat([noisy * c_in, cond.unsqueeze(1).expand(-1, f, -1, -1, -1)], dim=2)
    time_ids = torch.stack(
        [
            torch.full((b,), float(fps_id), device=x0.device),
            torch.full((b,), float(motion_bucket_id), device=x0.device),
            beta.float(),
        ],
        dim=1,
    )
    dtype = next(unet.parameters()).dtype
    out = unet(
        model_in.to(dtype),
        c_noise.view(b).to(dtype),
        encoder_hidden_states=embeds.to(dtype),
        added_time_ids=time_ids.to(dtype),
        return_dict=False,
    )[0]
    denoised = c_skip * noisy + c_out * out.float()
    sd2 = float(weight_sigma_data) ** 2
    weight = (sig**2 + sd2) / (sig**2 * sd2)  # λ(σ) = (σ² + σ_d²)/(σ σ_d)²
    loss = (weight * (denoised - x0) ** 2).mean()
    return loss, {"sigma_mean": float(sigma.mean()), "beta_s_mean": float(beta.mean())}


def ddpm_timenoise_loss(
    model: Callable[..., torch.Tensor],
    x0: torch.Tensor,
    cond: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    timenoise: TimeNoise | None,
    generator: torch.Generator | None = None,
    *,
    prediction_type: str = "epsilon",
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DDPM loss with TimeNoise on the condition (Sec. 5; official DynamiCrafter / VideoCrafter1 training).

    t ~ U{0, …, T−1}; x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε; c̃ = c + β_s ε' with β_s ~ TimeNoise(t/T) per sample;
    the loss is ‖model(x_t, t, c̃, **model_kwargs) − target‖² with target ε ("epsilon") or
    v = √ᾱ ε − √(1 − ᾱ) x₀ ("v_prediction", DynamiCrafter). ``cond`` is the tensor the paper noises: the
    concatenated image latent (DynamiCrafter, I2VGen-XL) or the CLIP image embedding (VideoCrafter1).
    """
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")
    b = x0.shape[0]
    T = alphas_cumprod.shape[0]
    dev = generator.device if generator is not None else torch.device("cpu")
    t = torch.randint(0, T, (b,), generator=generator, device=dev).to(x0.device)
    a = alphas_cumprod.to(x0.device, torch.float32)[t].view(b, *([1] * (x0.ndim - 1)))
    eps = _randn(tuple(x0.shape), generator, x0)
    xt = a.sqrt() * x0.float() + (1 - a).sqrt() * eps
    if timenoise is not None:
        # official: t/1000 with t in 0..999
        cond, beta = timenoise.apply(cond, t.float() / T, generator)
    else:
        beta = torch.zeros(b, device=x0.device)
    out = model(xt.to(x0.dtype), t, cond, **(model_kwargs or {}))
    target = eps if prediction_type == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0.float()
    loss = ((out.float() - target) ** 2).mean()
    return loss, {"t_mean": float(t.float().mean()), "beta_s_mean": float(beta.mean())}
