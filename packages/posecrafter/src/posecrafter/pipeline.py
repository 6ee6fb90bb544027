"""PoseCrafter inference (§3.2–3.3) on stock SD + ControlNet components with inflated attention.

1. select the training frame whose pose is closest to the target poses;
2. DDIM-invert its latent, conditioned on its pose and the prompt (no guidance, as the precursor);
3. initialise every frame from the inverted latent, with face and hands warped by least-squares affines;
4. insert the training pose at the key-frame slot (frame 0: key-frame attention reads it, temporal attention
   carries it), denoise all frames jointly with classifier-free guidance, and drop the inserted frame.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from posecrafter.affine import PARTS, EditRecord, edit_latents, vae_scale_factor
from posecrafter.attention import (
    PRECURSOR_TRAINABLE,
    frame_kwargs,
    inflate_controlnet,
    inflate_unet,
    select_trainable,
)
from posecrafter.ddim import DDIMSchedule, ddim_invert, ddim_sample
from posecrafter.loading import Components, load_components
from posecrafter.poses import Pose
from posecrafter.reference import select_reference_frame
from posecrafter.render import pose_images

__all__ = [
    "WEIGHTS_CONFIG",
    "WEIGHTS_NAME",
    "GenerationConfig",
    "PoseCrafterOutput",
    "PoseCrafterPipeline",
    "load_posecrafter_weights",
    "save_posecrafter_weights",
]

WEIGHTS_NAME = "posecrafter.safetensors"
WEIGHTS_CONFIG = "posecrafter_config.json"


@dataclass(frozen=True)
class GenerationConfig:
    """Defaults are the precursor's pose configuration (50 DDIM steps, guidance 12) and the paper's procedure."""

    num_inference_steps: int = 50
    guidance_scale: float = 12.0
    controlnet_scale: float = 1.0
    negative_prompt: str = ""
    init: Literal["inversion", "noise"] = "inversion"  # noise: i.i.d. Gaussian per frame (the plain baseline)
    insert_training_pose: bool = True
    latent_edit: bool = True
    edit_parts: tuple[str, ...] = PARTS
    edit_threshold: float = 0.3
    edit_margin: float = 1.0
    distance: str = "normalized"  # reference-frame pose distance: normalized | l2
    reference_frame: int | None = None  # force a training frame instead of selecting one
    joint: bool = True  # False: every frame is its own video (the frame-by-frame ControlNet baseline)

    def __post_init__(self) -> None:
        if self.num_inference_steps < 1:
            raise ValueError("num_inference_steps must be >= 1")
        if not np.isfinite(self.guidance_scale) or self.guidance_scale < 0:
            raise ValueError("guidance_scale must be finite and >= 0")
        if self.init not in ("inversion", "noise"):
            raise ValueError(f"unknown init {self.init!r}: use inversion or noise")


@dataclass
class PoseCrafterOutput:
    frames: np.ndarray  # (F, H, W, 3) uint8, the target poses' frames (the inserted frame dropped)
    latents: torch.Tensor  # (F, C, h, w) final latents of those frames
    reference_index: int | None
    inverted: torch.Tensor | None  # (1, C, h, w) the inverted reference latent
    edits: list[EditRecord] = field(default_factory=list)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class PoseCrafterPipeline:
    """``PoseCrafterPipeline(components)`` inflates the UNet (key-frame + temporal attention) and the ControlNet
    (key-frame attention) of stock SD + ControlNet components in place.

    ``pipe(prompt, train_frames, train_poses, target_poses)`` generates one frame per target pose.
    """

    def __init__(
        self,
        components: Components,
        *,
        temporal_down: Sequence[int] = (0, 1, 2),
        temporal_up: Sequence[int] = (1, 2, 3),
        seed: int = 0,
    ) -> None:
        self.c = components
        inflate_unet(self.c.unet, temporal_down, temporal_up, seed=seed)
        inflate_controlnet(self.c.controlnet)
        self.vae_factor = vae_scale_factor(self.c.vae)
        self.progress: Callable[[int, int], None] | None = None

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        controlnet: str | None = None,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> PoseCrafterPipeline:
        """From ``model`` ("tiny", or an SD folder/hub id) and ``controlnet``; ``weights``: a folder written by
        `save_posecrafter_weights` (the one-shot-trained modules)."""
        pipe = cls(load_components(model, controlnet, device=device, dtype=dtype, seed=seed), seed=seed)
        if weights is not None:
            load_posecrafter_weights(pipe.c.unet, pipe.c.controlnet, weights)
        return pipe

    @property
    def device(self) -> torch.device:
        return next(self.c.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.c.unet.parameters()).dtype

    # ---- encoders -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        tok = self.c.tokenizer(
            [prompt],
            padding="max_length",
            max_length=self.c.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        return self.c.text_encoder(tok.input_ids.to(self.device))[0].to(self.dtype)

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 → latents (F, C, h, w) (the posterior mean, scaled: deterministic)."""
        x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).to(self.device, self.dtype) / 127.5 - 1
        lat = self.c.vae.encode(x).latent_dist.mean
        return lat.float() * self.c.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        vae_dtype = next(self.c.vae.parameters()).dtype
        out = [
            self.c.vae.decode((z[None] / self.c.vae.config.scaling_factor).to(vae_dtype)).sample
            for z in latents
        ]
        return _to_uint8(torch.cat(out))

    def condition(self, poses: Sequence[Pose], height: int, width: int) -> torch.Tensor:
        """ControlNet conditioning images (F, 3, H, W) in [0, 1] from poses (rescaled to the frame size)."""
        scaled = [p if (p.width, p.height) == (width, height) else p.scaled(width, height) for p in poses]
        imgs = torch.from_numpy(pose_images(scaled)).permute(0, 3, 1, 2)
        return (imgs.float() / 255).to(self.device, self.dtype)

    # ---- the ε-model ----------------------------------------------------------------------------------------
    def eps(
        self,
        x: torch.Tensor,
        t: int | torch.Tensor,
        text: torch.Tensor,
        cond: torch.Tensor,
        num_frames: int,
        key_frame: int = 0,
        controlnet_scale: float = 1.0,
    ) -> torch.Tensor:
        """ε for a batch of ``x.shape[0] / num_frames`` videos; ``text`` (B, L, D), ``cond`` (B, 3, H, W)."""
        kw = frame_kwargs(num_frames, key_frame)
        # latents stay float32 in the sampler; the networks run in their own dtype (bf16 on GPUs)
        x, text, cond = x.to(self.dtype), text.to(self.dtype), cond.to(self.dtype)
        down, mid = self.c.controlnet(
            x, t, encoder_hidden_states=text, controlnet_cond=cond, conditioning_scale=controlnet_scale,
            return_dict=False, cross_attention_kwargs=kw,
        )  # fmt: skip
        return self.c.unet(
            x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
            mid_block_additional_residual=mid, cross_attention_kwargs=kw,
        ).sample.float()  # fmt: skip

    def guided_eps(
        self,
        x: torch.Tensor,
        t: int,
        cond_text: torch.Tensor,
        uncond_text: torch.Tensor,
        cond: torch.Tensor,
        num_frames: int,
        guidance: float,
        controlnet_scale: float,
    ) -> torch.Tensor:
        n = x.shape[0]
        if guidance == 1.0:
            return self.eps(x, t, cond_text.expand(n, -1, -1), cond, num_frames, 0, controlnet_scale)
        xx = torch.cat([x, x])
        text = torch.cat([uncond_text.expand(n, -1, -1), cond_text.expand(n, -1, -1)])
        e_u, e_c = self.eps(xx, t, text, torch.cat([cond, cond]), num_frames, 0, controlnet_scale).chunk(2)
        return e_u + guidance * (e_c - e_u)

    # ---- inference ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def invert(
        self, latent: torch.Tensor, pose: Pose, prompt: str, steps: int = 50, controlnet_scale: float = 1.0
    ) -> list[torch.Tensor]:
        """DDIM inversion of one frame's latent (1, C, h, w), conditioned on its pose and the prompt (the
        conditional branch only, no guidance, as the precursor). Returns the trajectory, noisiest last."""
        h, w = latent.shape[-2] * self.vae_factor, latent.shape[-1] * self.vae_factor
        cond = self.condition([pose], h, w)
        text = self.encode_prompt(prompt)
        sched = DDIMSchedule.from_scheduler(self.c.scheduler, steps)
        return ddim_invert(lambda x, t: self.eps(x, t, text, cond, 1, 0, controlnet_scale), latent, sched)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        train_frames: np.ndarray | None,
        train_poses: Sequence[Pose] | None,
        target_poses: Sequence[Pose],
        config: GenerationConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> PoseCrafterOutput:
        cfg = config or GenerationConfig()
        if not target_poses:
            raise ValueError("no target poses given")
        uses_train = cfg.init == "inversion" or cfg.insert_training_pose
        if uses_train:
            if train_frames is None or train_poses is None:
                raise ValueError("inversion and pose insertion need the training frames and their poses")
            if len(train_frames) != len(train_poses):
                raise ValueError(f"{len(train_frames)} training frames but {len(train_poses)} training poses")
            height, width = np.asarray(train_frames).shape[1:3]
        else:
            height, width = target_poses[0].height, target_poses[0].width
        mult = self.vae_factor * 2 ** (len(self.c.unet.config.block_out_channels) - 1)
        if height % mult or width % mult:
            raise ValueError(f"frame size {width}x{height} must be a multiple of {mult} for this model")
        h, w = height // self.vae_factor, width // self.vae_factor
        ch = self.c.unet.config.in_channels
        n_tgt = len(target_poses)

        ref_idx, inverted, edits = None, None, []
        if uses_train:
            ref_idx = (
                cfg.reference_frame
                if cfg.reference_frame is not None
                else select_reference_frame(train_poses, target_poses, cfg.distance)
            )
            if not 0 <= ref_idx < len(train_poses):
                raise ValueError(f"reference_frame {ref_idx} outside the {len(train_poses)} training frames")
        if cfg.init == "inversion":
            ref_lat = self.encode_frames(np.asarray(train_frames)[ref_idx : ref_idx + 1])
            inverted = self.invert(
                ref_lat, train_poses[ref_idx], prompt, cfg.num_inference_steps, cfg.controlnet_scale
            )[-1]
            init = inverted.expand(n_tgt, -1, -1, -1).clone()
            if cfg.latent_edit:
                tgt_scaled = [
                    p if (p.width, p.height) == (width, height) else p.scaled(width, height)
                    for p in target_poses
                ]
                ref_pose = train_poses[ref_idx].scaled(width, height)
                init, edits = edit_latents(
                    init, inverted[0], ref_pose, tgt_scaled, self.vae_factor,
                    parts=cfg.edit_parts, threshold=cfg.edit_threshold, margin=cfg.edit_margin,
                )  # fmt: skip
        else:
            g = generator if generator is not None else torch.Generator().manual_seed(0)
            n_init = n_tgt + int(cfg.insert_training_pose)
            init = torch.randn(n_init, ch, h, w, generator=g).to(self.device)  # CPU draws: same on any device
            inverted_slot = init[:1]
            init = init[int(cfg.insert_training_pose) :]
        poses = list(target_poses)
        if cfg.insert_training_pose:
            first = inverted if inverted is not None else inverted_slot
            init = torch.cat([first.to(init), init])
            poses = [train_poses[ref_idx], *poses]
        cond = self.condition(poses, height, width)
        frames = len(poses) if cfg.joint else 1
        cond_text, uncond_text = self.encode_prompt(prompt), self.encode_prompt(cfg.negative_prompt)
        sched = DDIMSchedule.from_scheduler(self.c.scheduler, cfg.num_inference_steps)
        steps = len(sched.timesteps)

        def cb(i: int, _x: torch.Tensor) -> None:
            if self.progress is not None:
                self.progress(i + 1, steps)

        lat = ddim_sample(
            lambda x, t: self.guided_eps(
                x, t, cond_text, uncond_text, cond, frames, cfg.guidance_scale, cfg.controlnet_scale
            ),
            init.to(self.device, torch.float32),
            sched,
            cb,
        )
        if cfg.insert_training_pose:
            lat = lat[1:]  # the inserted training frame carried appearance; it is not part of the output
        return PoseCrafterOutput(self.decode(lat), lat, ref_idx, inverted, edits)


# ---- trained modules ---------------------------------------------------------------------------------------------


def save_posecrafter_weights(
    unet: torch.nn.Module,
    controlnet: torch.nn.Module,
    out_dir: str | os.PathLike[str],
    patterns: Sequence[str] = PRECURSOR_TRAINABLE,
) -> Path:
    """Write the one-shot-trained modules (the precursor's trainable set) as ``posecrafter.safetensors`` with
    ``posecrafter_config.json`` (which blocks have temporal attention, the trainable rule). The rest of the model
    is the stock checkpoint and is not copied."""
    from gen_common.atomic import atomic_write_json
    from gen_common.checkpoint import save_state_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flags = {n: p.requires_grad for m in (unet, controlnet) for n, p in m.named_parameters()}
    try:
        params = select_trainable({"unet": unet, "controlnet": controlnet}, patterns)
    finally:  # leave the caller's requires_grad flags as they were
        for m in (unet, controlnet):
            for n, p in m.named_parameters():
                p.requires_grad_(flags[n])
    save_state_dict({k: v.detach() for k, v in params.items()}, out / WEIGHTS_NAME)
    temporal = getattr(unet, "posecrafter_temporal", {"down": [0, 1, 2], "up": [1, 2, 3]})
    atomic_write_json(
        out / WEIGHTS_CONFIG,
        {
            "format": "posecrafter-weights-v1",
            "temporal_down": temporal["down"],
            "temporal_up": temporal["up"],
            "trainable": list(patterns),
        },
    )
    return out


def load_posecrafter_weights(
    unet: torch.nn.Module, controlnet: torch.nn.Module, weights_dir: str | os.PathLike[str]
) -> None:
    """Inflate a stock UNet/ControlNet as the saved config says and load the trained modules (strict: every
    saved tensor must find its place and every trainable place must be filled)."""
    from gen_common.checkpoint import CheckpointError, load_state_dict

    d = Path(weights_dir)
    cfg_path, w_path = d / WEIGHTS_CONFIG, d / WEIGHTS_NAME
    if not cfg_path.is_file() or not w_path.is_file():
        raise CheckpointError(
            f"{d}: expected {WEIGHTS_NAME} and {WEIGHTS_CONFIG} (written by posecrafter train)"
        )
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    inflate_unet(unet, cfg["temporal_down"], cfg["temporal_up"])
    inflate_controlnet(controlnet)
    state = load_state_dict(w_path)
    targets: dict[str, Any] = {}
    for prefix, m in (("unet", unet), ("controlnet", controlnet)):
        targets.update({f"{prefix}.{n}": p for n, p in m.named_parameters()})
    missing_place = sorted(set(state) - set(targets))
    if missing_place:
        raise CheckpointError(
            f"{w_path}: {len(missing_place)} tensors match no parameter, e.g. {missing_place[0]}"
        )
    flags = {n: p.requires_grad for n, p in targets.items()}
    expected = set(select_trainable({"unet": unet, "controlnet": controlnet}, cfg["trainable"]))
    for n, p in targets.items():
        p.requires_grad_(flags[n])
    unfilled = sorted(expected - set(state))
    if unfilled:
        raise CheckpointError(f"{w_path}: lacks {len(unfilled)} trained tensors, e.g. {unfilled[0]}")
    with torch.no_grad():
        for k, v in state.items():
            if targets[k].shape != v.shape:
                raise CheckpointError(
                    f"{w_path}: {k} has shape {tuple(v.shape)}, the model {tuple(targets[k].shape)}"
                )
            targets[k].copy_(v.to(targets[k].dtype))
