"""Latent editing for face and hands (PoseCrafter §3.3): a least-squares affine map from the reference frame's
landmarks to each target frame's, scaled to latent coordinates, warps the reference latent (kornia), and the
warped latent is pasted inside the part's mask of that frame's initial latent.

Coordinates: a pixel's centre is at its integer index (OpenPose's convention and kornia's ``align_corners=True``).
Latent pixel ``q`` covers image pixels ``f·q … f·q + f − 1`` for the VAE's downsampling factor ``f``, so its
centre is ``p = f·q + (f − 1)/2``; the latent affine is conjugated by that map instead of dividing by a bare 8.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from posecrafter.poses import Pose

__all__ = [
    "PARTS",
    "AffineFitError",
    "EditRecord",
    "edit_latents",
    "fit_affine",
    "latent_affine",
    "part_mask",
    "pixel_to_latent",
    "vae_scale_factor",
    "warp_latent",
]

PARTS = ("face", "left_hand", "right_hand")


class AffineFitError(ValueError):
    """Too few (or collinear) confident landmarks for an affine fit."""


def vae_scale_factor(vae: Any) -> int:
    """The VAE's spatial downsampling factor, ``2 ** (len(block_out_channels) − 1)`` (8 for SD's VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def fit_affine(src: Any, dst: Any) -> np.ndarray:
    """The least-squares 2×3 affine ``A`` with ``dst ≈ A @ [src; 1]`` from (N, 2) points (N ≥ 3, not collinear).

    Solves ``[src 1] M = dst`` for M (3×2) in the least-squares sense and returns ``Mᵀ``; exact on noise-free
    points of an affine map.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or d.shape != s.shape:
        raise ValueError(f"fit_affine needs two (N, 2) arrays of equal shape, got {s.shape} and {d.shape}")
    if not (np.isfinite(s).all() and np.isfinite(d).all()):
        raise ValueError("fit_affine: landmarks contain NaN or inf")
    x = np.concatenate([s, np.ones((len(s), 1))], axis=1)
    if len(s) < 3 or np.linalg.matrix_rank(x, tol=1e-6 * max(1.0, np.abs(s).max())) < 3:
        raise AffineFitError(f"an affine fit needs at least 3 non-collinear landmarks, got {len(s)}")
    m, *_ = np.linalg.lstsq(x, d, rcond=None)
    return m.T.astype(np.float64)


def pixel_to_latent(points: Any, factor: int) -> np.ndarray:
    """Image-pixel coordinates (…, 2) → latent-pixel coordinates for downsampling ``factor``."""
    return (np.asarray(points, np.float64) - (factor - 1) / 2) / factor


def latent_affine(a: np.ndarray, factor: int) -> np.ndarray:
    """The pixel-space affine ``a`` (2×3) expressed on the latent grid: with ``p = f·q + c``, ``c = (f − 1)/2``,
    ``q' = R q + (R c + t − c) / f``."""
    a = np.asarray(a, np.float64)
    r, t = a[:, :2], a[:, 2]
    c = np.full(2, (factor - 1) / 2)
    return np.concatenate([r, ((r @ c + t - c) / factor)[:, None]], axis=1)


def warp_latent(latent: torch.Tensor, a_latent: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Warp a latent (C, h, w) or (B, C, h, w) by the latent-grid affine (2×3, source → destination), bilinear,
    edges replicated (kornia ``warp_affine``)."""
    from kornia.geometry.transform import warp_affine

    x = latent if latent.ndim == 4 else latent[None]
    m = torch.as_tensor(np.asarray(a_latent), dtype=torch.float32, device=x.device)[None].expand(
        x.shape[0], 2, 3
    )
    out = warp_affine(
        x.float(), m, dsize=tuple(x.shape[-2:]), mode="bilinear", padding_mode="border", align_corners=True
    ).to(latent.dtype)
    return out if latent.ndim == 4 else out[0]


def part_mask(points: Any, latent_hw: tuple[int, int], factor: int, margin: float = 1.0) -> torch.Tensor:
    """A (h, w) {0, 1} mask: the latent pixels inside the bounding box of ``points`` (image pixels, (N, 2)),
    grown by ``margin`` latent pixels on every side."""
    q = pixel_to_latent(points, factor)
    lo, hi = q.min(0) - margin, q.max(0) + margin
    h, w = latent_hw
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    inside = (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
    return inside.float()


@dataclass(frozen=True)
class EditRecord:
    frame: int
    part: str
    status: str  # "edited" or the reason it was skipped
    matrix: tuple[tuple[float, ...], ...] | None = None


def edit_latents(
    init: torch.Tensor,
    reference: torch.Tensor,
    ref_pose: Pose,
    target_poses: Sequence[Pose],
    factor: int,
    *,
    parts: Sequence[str] = PARTS,
    threshold: float = 0.3,
    margin: float = 1.0,
) -> tuple[torch.Tensor, list[EditRecord]]:
    """Paste the affinely warped ``reference`` latent (C, h, w) into each part's mask of ``init`` (F, C, h, w),
    frame ``i`` following ``target_poses[i]``. A part with fewer than 3 landmarks confident (≥ ``threshold``) in
    both poses is skipped with a warning; the others are edited."""
    if init.ndim != 4 or reference.ndim != 3 or init.shape[1:] != reference.shape:
        raise ValueError(
            f"init (F, C, h, w) and reference (C, h, w) disagree: {tuple(init.shape)} vs {tuple(reference.shape)}"
        )
    if len(target_poses) != init.shape[0]:
        raise ValueError(f"{len(target_poses)} target poses for {init.shape[0]} latents")
    out = init.clone()
    records: list[EditRecord] = []
    h, w = init.shape[-2:]
    for i, tgt in enumerate(target_poses):
        src_pose = (
            ref_pose
            if (ref_pose.width, ref_pose.height) == (tgt.width, tgt.height)
            else ref_pose.scaled(tgt.width, tgt.height)
        )
        for part in parts:
            s, d = src_pose.part(part), tgt.part(part)
            ok = (s[:, 2] >= threshold) & (d[:, 2] >= threshold)
            try:
                a = fit_affine(s[ok, :2], d[ok, :2])
            except AffineFitError as exc:
                warnings.warn(f"frame {i} {part}: {exc}; this part is not edited", stacklevel=2)
                records.append(EditRecord(i, part, f"skipped: {exc}"))
                continue
            a_lat = latent_affine(a, factor)
            mask = part_mask(d[ok, :2], (h, w), factor, margin).to(out.device, out.dtype)
            warped = warp_latent(reference.to(out.device), a_lat)
            out[i] = mask * warped + (1 - mask) * out[i]
            records.append(EditRecord(i, part, "edited", tuple(tuple(float(v) for v in r) for r in a)))
    return out, records
