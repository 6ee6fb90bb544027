"""Stable-Zero123 / Zero123-XL through diffusers (pip install "microdreamer[zero123]").

Reads the diffusers layout of ``ashawkey/stable-zero123-diffusers`` (what the release loads): ``unet/`` (an 8-channel
image-conditioned UNet2DConditionModel), ``vae/``, ``image_encoder/`` (CLIPVisionModelWithProjection),
``clip_camera_projection/`` (a Linear 768+4 → 768, keys ``projection.*``), ``scheduler/``; from a local folder or a
hub id (downloaded by huggingface_hub when the network is allowed). No custom pipeline code is executed.

Conditioning as in guidance/zero123_utils.py: the CLIP image embedding concatenated with the relative camera
T = [Δelevation (rad), sin azimuth, cos azimuth, 90° + input elevation (rad)] (Stable-Zero123; Zero123-XL uses the
radius offset instead) and projected; the input view's VAE latent (÷ scaling factor) is concatenated to the noisy
latent; the unconditional branch zeroes both. CFG batches are [cond, uncond].
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from microdreamer.cameras import Cameras
from microdreamer.ddim import scaled_linear_alphas_cumprod
from microdreamer.denoisers import CallCounter, LatentDenoiser

__all__ = ["CameraProjection", "Zero123Denoiser", "load_denoiser", "tiny_zero123"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _require():
    try:
        import diffusers
        import transformers
    except ImportError as exc:
        raise ImportError(
            'the Stable-Zero123 denoiser needs diffusers: pip install "microdreamer[zero123]"'
        ) from exc
    return diffusers, transformers


class CameraProjection(torch.nn.Module):
    """The release pipeline's CCProjection: Linear(in_channel → out_channel) on [CLIP embedding, camera]."""

    def __init__(self, in_channel: int = 772, out_channel: int = 768):
        super().__init__()
        self.in_channel, self.out_channel = in_channel, out_channel
        self.projection = torch.nn.Linear(in_channel, out_channel)

    def forward(self, x):
        return self.projection(x)

    def save_pretrained(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(
            json.dumps({"in_channel": self.in_channel, "out_channel": self.out_channel})
        )
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()},
            str(folder / "diffusion_pytorch_model.safetensors"),
        )

    @classmethod
    def from_pretrained(cls, folder: Path) -> CameraProjection:
        from safetensors.torch import load_file

        cfg = json.loads((folder / "config.json").read_text())
        m = cls(int(cfg["in_channel"]), int(cfg["out_channel"]))
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{folder}: no .safetensors weights (pickled .bin files are not loaded)")
        m.load_state_dict(load_file(str(files[0])))
        return m


class Zero123Denoiser(LatentDenoiser):
    """The denoiser protocol for an image-conditioned Zero123-family model (family ``zero123``)."""

    family = "zero123"
    resize = "bicubic"  # renders reach the VAE bicubic-resized, as the release's encode_imgs

    def __init__(
        self,
        unet,
        vae,
        image_encoder,
        projection: CameraProjection,
        *,
        alphas_cumprod: torch.Tensor | None = None,
        stable: bool = True,
        image_size: int = 256,
        clip_size: int = 224,
        counter: CallCounter | None = None,
    ):
        self.unet, self.vae, self.image_encoder, self.projection = unet, vae, image_encoder, projection
        self.alphas_cumprod = alphas_cumprod if alphas_cumprod is not None else scaled_linear_alphas_cumprod()
        self.stable, self.image_size, self.clip_size = stable, image_size, clip_size
        self.counter = counter or CallCounter()
        self._init_generator()
        self.embeddings: tuple[torch.Tensor, torch.Tensor] | None = None
        self.default_elevation = 0.0

    # ---- loading -----------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, device="cpu", dtype: torch.dtype | None = None
    ) -> Zero123Denoiser:
        diffusers, transformers = _require()
        from gen_common.checkpoint import resolve_pretrained

        root = Path(resolve_pretrained(str(name_or_path)))
        missing = [
            s for s in ("unet", "vae", "image_encoder", "clip_camera_projection") if not (root / s).is_dir()
        ]
        if missing:
            raise FileNotFoundError(
                f"{root} is not a Zero123 diffusers folder (missing {', '.join(missing)}/)"
            )
        kw = {"use_safetensors": True}
        unet = diffusers.UNet2DConditionModel.from_pretrained(root / "unet", **kw)
        vae = diffusers.AutoencoderKL.from_pretrained(root / "vae", **kw)
        enc = transformers.CLIPVisionModelWithProjection.from_pretrained(root / "image_encoder", **kw)
        proj = CameraProjection.from_pretrained(root / "clip_camera_projection")
        alphas = None
        sched = root / "scheduler" / "scheduler_config.json"
        if sched.is_file():
            cfg = json.loads(sched.read_text())
            if (
                cfg.get("beta_schedule", "scaled_linear") != "scaled_linear"
                or cfg.get("prediction_type", "epsilon") != "epsilon"
            ):
                raise ValueError(f"{sched}: only scaled-linear ε-prediction schedules are supported")
            alphas = scaled_linear_alphas_cumprod(
                cfg.get("beta_start", 0.00085),
                cfg.get("beta_end", 0.012),
                cfg.get("num_train_timesteps", 1000),
            )
        extra = (
            json.loads((root / "microdreamer.json").read_text())
            if (root / "microdreamer.json").is_file()
            else {}
        )
        stable = extra.get("stable", "zero123-xl" not in str(name_or_path))
        den = cls(
            unet,
            vae,
            enc,
            proj,
            alphas_cumprod=alphas,
            stable=stable,
            image_size=int(extra.get("image_size", 256)),
            clip_size=int(enc.config.image_size),
        )
        return den.to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.image_encoder.save_pretrained(folder / "image_encoder")
        self.projection.save_pretrained(folder / "clip_camera_projection")
        (folder / "microdreamer.json").write_text(
            json.dumps({"stable": self.stable, "image_size": self.image_size})
        )
        return folder

    def to(self, device, dtype: torch.dtype | None = None) -> Zero123Denoiser:
        for m in (self.unet, self.vae, self.image_encoder, self.projection):
            m.to(device=device, dtype=dtype) if dtype is not None else m.to(device)
            m.eval().requires_grad_(False)
        return self

    # ---- the protocol ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_reference(self, image: torch.Tensor, elevation: float = 0.0) -> None:
        """The input view (RGB on white, [1, 3, H, W] in [0, 1]): CLIP embedding and VAE latent (get_img_embeds)."""
        x = F.interpolate(image, (self.image_size, self.image_size), mode="bilinear", align_corners=False).to(
            self.device
        )
        xc = F.interpolate(x, (self.clip_size, self.clip_size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        c = self.image_encoder(((xc - mean) / std).to(self.dtype)).image_embeds
        v = self.encode(x) / self.vae.config.scaling_factor
        self.embeddings = (c, v)
        self.default_elevation = float(elevation)

    def _camera(self, cameras: Cameras) -> torch.Tensor:
        ver = torch.deg2rad(cameras.elevations - self.default_elevation)
        hor = torch.deg2rad(cameras.azimuths)
        last = (
            torch.full_like(ver, math.radians(90 + self.default_elevation))
            if self.stable
            else cameras.radii - cameras.radii[0]
        )
        return torch.stack([ver, hor.sin(), hor.cos(), last], -1)[:, None].to(self.device, self.dtype)

    @torch.no_grad()
    def eps(self, latents, t, cameras, *, guidance_scale, uncond_only=False, doubled=True, phase="sample"):
        if self.embeddings is None:
            raise ValueError(
                "call set_reference(image) before sampling: Zero123 is conditioned on the input view"
            )
        B = latents.shape[0]
        c, v = self.embeddings
        cc = self.projection(torch.cat([c[:, None].expand(B, 1, c.shape[-1]), self._camera(cameras)], -1))
        vae = v.expand(B, *v.shape[1:])
        run_both = doubled or not uncond_only
        self.counter.record(phase, run_both)
        x = latents.to(self.dtype)
        if run_both:
            x_in = torch.cat([torch.cat([x, vae], 1), torch.cat([x, torch.zeros_like(vae)], 1)])
            ctx = torch.cat([cc, torch.zeros_like(cc)])
        else:
            x_in, ctx = torch.cat([x, torch.zeros_like(vae)], 1), torch.zeros_like(cc)
        tt = torch.full((x_in.shape[0],), t, device=self.device, dtype=self.dtype)
        out = self.unet(x_in, tt, encoder_hidden_states=ctx).sample.float()
        if not run_both:
            return out
        e_c, e_u = out.chunk(2)
        if uncond_only:
            return e_u
        return e_u + guidance_scale * (e_c - e_u)


def load_denoiser(name_or_path: str, *, device="cpu") -> Zero123Denoiser:
    """Stable-Zero123 from a local diffusers folder or hub id (fp16 on CUDA, as the release)."""
    dev = torch.device(device)
    return Zero123Denoiser.from_pretrained(
        name_or_path, device=dev, dtype=torch.float16 if dev.type == "cuda" else None
    )


def tiny_vae(image_size: int = 32):
    """The tiny test denoisers' VAE: 2 levels (16/32 channels), 4 latent channels, ×2 down-sampling."""
    diffusers, _ = _require()
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=image_size,
    )


def tiny_zero123(seed: int = 0, *, image_size: int = 32) -> Zero123Denoiser:
    """A random Zero123-shaped model for tests: 8-channel UNet (32/64 channels), 2-level VAE, tiny CLIP tower."""
    diffusers, _ = _require()
    from gen_common.testing.video_tiny import tiny_clip_vision_model

    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's global generator
        torch.manual_seed(seed)
        unet = diffusers.UNet2DConditionModel(
            sample_size=image_size // 2,
            in_channels=8,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = tiny_vae(image_size)
        enc = tiny_clip_vision_model(
            seed=seed, hidden_size=32, projection_dim=32, image_size=16, patch_size=4
        )
        proj = CameraProjection(32 + 4, 32)
    return Zero123Denoiser(unet, vae, enc, proj, image_size=image_size, clip_size=16).to("cpu")
