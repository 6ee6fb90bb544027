"""Pose → ControlNet-OpenPose conditioning image (numpy/PIL, OpenPose colours), and synthetic poses and "blob
people" for offline tests and the demo.

The drawing follows the convention ControlNet-OpenPose was trained on: black canvas, limbs as ellipses in the
limb's colour at 60 % intensity, joints as full-colour discs, hand edges in a rainbow with blue joints, face
landmarks as white dots.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from posecrafter.poses import BODY_COLORS, BODY_LIMBS, HAND_EDGES, N_BODY, N_FACE, N_HAND, Pose

__all__ = [
    "blob_person",
    "pose_images",
    "render_pose",
    "synthetic_clip",
    "synthetic_pose",
    "synthetic_pose_sequence",
]


def _ellipse(a: np.ndarray, b: np.ndarray, half_width: float, n: int = 24) -> list[tuple[float, float]]:
    c = (a + b) / 2
    half_len = float(np.linalg.norm(b - a)) / 2
    ang = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
    ca, sa = math.cos(ang), math.sin(ang)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = half_len * math.cos(t), half_width * math.sin(t)
        pts.append((c[0] + x * ca - y * sa, c[1] + x * sa + y * ca))
    return pts


def _disc(draw: ImageDraw.ImageDraw, p: np.ndarray, r: float, color: tuple[int, ...]) -> None:
    draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=color)


def render_pose(
    pose: Pose,
    *,
    body: bool = True,
    hands: bool = True,
    face: bool = True,
    threshold: float = 0.3,
    stick_width: float | None = None,
) -> np.ndarray:
    """The conditioning image (H, W, 3) uint8 of ``pose`` on its own canvas. Keypoints with confidence below
    ``threshold`` are not drawn. ``stick_width`` defaults to 4 px at 512 px, scaled with the canvas."""
    w, h = pose.width, pose.height
    scale = max(w, h) / 512
    sw = stick_width if stick_width is not None else max(1.0, 4.0 * scale)
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    if body:
        b = pose.body
        for (i, j), color in zip(BODY_LIMBS, BODY_COLORS):
            if b[i, 2] >= threshold and b[j, 2] >= threshold:
                dim = tuple(int(c * 0.6) for c in color)
                draw.polygon(_ellipse(b[i, :2], b[j, :2], sw), fill=dim)
        for i in range(N_BODY):
            if b[i, 2] >= threshold:
                _disc(draw, b[i, :2], sw, BODY_COLORS[i])
    if hands:
        for hand in pose.hands:
            for k, (i, j) in enumerate(HAND_EDGES):
                if hand[i, 2] >= threshold and hand[j, 2] >= threshold:
                    rgb = colorsys.hsv_to_rgb(k / len(HAND_EDGES), 1.0, 1.0)
                    draw.line(
                        [tuple(hand[i, :2]), tuple(hand[j, :2])],
                        fill=tuple(int(255 * c) for c in rgb),
                        width=max(1, round(2 * scale)),
                    )
            for i in range(N_HAND):
                if hand[i, 2] >= threshold:
                    _disc(draw, hand[i, :2], max(0.5, 4 * scale), (0, 0, 255))
    if face:
        for i in range(N_FACE):
            if pose.face[i, 2] >= threshold:
                _disc(draw, pose.face[i, :2], max(0.5, 3 * scale), (255, 255, 255))
    return np.asarray(img)


def pose_images(poses: Sequence[Pose], **kwargs: object) -> np.ndarray:
    """Conditioning images of a sequence, (F, H, W, 3) uint8."""
    return np.stack([render_pose(p, **kwargs) for p in poses])


# ---------------------------------------------------------------------------------------------------------------
# Synthetic people: a parametric skeleton whose arms swing, with 68 face landmarks and two 21-point hands.


def _face_points(cx: float, cy: float, r: float, turn: float) -> np.ndarray:
    """68 landmarks in the iBUG layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) around a
    head of radius ``r``; ``turn`` shifts the inner features sideways (a head turn)."""
    pts = []
    for k in range(17):  # jaw: lower half ellipse from right ear to left ear
        t = math.pi * (k / 16)
        pts.append((cx - r * 0.9 * math.cos(t), cy + r * 0.2 + r * 0.75 * math.sin(t)))
    fx = cx + turn * r * 0.25
    for side in (-1, 1):  # brows
        for k in range(5):
            pts.append(
                (fx + side * r * (0.15 + 0.12 * k), cy - r * 0.35 - r * 0.05 * math.sin(math.pi * k / 4))
            )
    for k in range(4):  # nose bridge
        pts.append((fx, cy - r * 0.2 + r * 0.12 * k))
    for k in range(5):  # nostrils
        pts.append((fx + r * 0.1 * (k - 2), cy + r * 0.3))
    for side in (-1, 1):  # eyes: 6 points on a small ellipse each
        ex = fx + side * r * 0.38
        for k in range(6):
            t = 2 * math.pi * k / 6
            pts.append((ex + r * 0.14 * math.cos(t), cy - r * 0.15 + r * 0.06 * math.sin(t)))
    for k in range(12):  # outer lip
        t = 2 * math.pi * k / 12
        pts.append((fx + r * 0.3 * math.cos(t), cy + r * 0.55 + r * 0.12 * math.sin(t)))
    for k in range(8):  # inner lip
        t = 2 * math.pi * k / 8
        pts.append((fx + r * 0.18 * math.cos(t), cy + r * 0.55 + r * 0.05 * math.sin(t)))
    return np.asarray(pts, np.float32)


def _hand_points(wrist: np.ndarray, direction: float, size: float, spread: float) -> np.ndarray:
    pts = [wrist]
    for f in range(5):
        ang = direction + spread * (f - 2) * 0.35
        base = wrist + 0.35 * size * np.array([math.cos(ang), math.sin(ang)])
        for j in range(4):
            pts.append(base + (0.18 * size * j) * np.array([math.cos(ang), math.sin(ang)]))
    return np.asarray(pts, np.float32)


def synthetic_pose(
    width: int,
    height: int,
    *,
    t: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    turn: float = 0.0,
) -> Pose:
    """A standing person whose arms swing with phase ``t`` (radians), shifted by ``shift`` (fractions of the
    canvas), scaled by ``scale``, head turned by ``turn`` ∈ [-1, 1]. Everything is confident (1.0)."""
    u = min(width, height) * scale
    cx, top = width * (0.5 + shift[0]), height * (0.12 + shift[1])
    neck = np.array([cx, top + 0.22 * u])
    head = np.array([cx, top + 0.1 * u])
    sh = 0.16 * u
    r_sho, l_sho = neck + np.array([-sh, 0.02 * u]), neck + np.array([sh, 0.02 * u])
    hip_y = neck[1] + 0.38 * u
    r_hip, l_hip = np.array([cx - 0.09 * u, hip_y]), np.array([cx + 0.09 * u, hip_y])
    arm = 0.17 * u
    a_r = math.pi / 2 + 0.6 + 0.7 * math.sin(t)  # right arm hangs down-left and swings
    a_l = math.pi / 2 - 0.6 - 0.7 * math.sin(t + 0.8)
    r_elb = r_sho + arm * np.array([math.cos(a_r), math.sin(a_r)])
    r_wri = r_elb + arm * np.array([math.cos(a_r - 0.4), math.sin(a_r - 0.4)])
    l_elb = l_sho + arm * np.array([math.cos(a_l), math.sin(a_l)])
    l_wri = l_elb + arm * np.array([math.cos(a_l + 0.4), math.sin(a_l + 0.4)])
    leg = 0.2 * u
    r_kne, l_kne = r_hip + np.array([-0.01 * u, leg]), l_hip + np.array([0.01 * u, leg])
    r_ank, l_ank = r_kne + np.array([0, leg]), l_kne + np.array([0, leg])
    eye_dx, eye_y = 0.035 * u, head[1] - 0.015 * u
    fx = turn * 0.02 * u
    body = np.array(
        [
            head + np.array([fx, 0.0]), neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip, r_kne, r_ank,
            l_hip, l_kne, l_ank, [cx - eye_dx + fx, eye_y], [cx + eye_dx + fx, eye_y],
            [cx - 2 * eye_dx, head[1]], [cx + 2 * eye_dx, head[1]],
        ],
        np.float32,
    )  # fmt: skip
    body = np.concatenate([body, np.ones((N_BODY, 1), np.float32)], axis=1)
    face = _face_points(float(head[0]), float(head[1]), 0.09 * u, turn)
    hand = 0.09 * u
    hands = np.stack(
        [
            _hand_points(l_wri, a_l + 0.4, hand, 1.0 + 0.3 * math.cos(t)),
            _hand_points(r_wri, a_r - 0.4, hand, 1.0 + 0.3 * math.sin(t)),
        ]
    )
    ones = np.ones((*hands.shape[:2], 1), np.float32)
    return Pose(
        body,
        width,
        height,
        np.concatenate([face, np.ones((N_FACE, 1), np.float32)], 1),
        np.concatenate([hands, ones], -1),
    )


def synthetic_pose_sequence(
    n_frames: int,
    width: int = 64,
    height: int = 64,
    *,
    phase: float = 0.0,
    speed: float = 0.6,
    drift: float = 0.0,
    scale: float = 1.0,
) -> list[Pose]:
    """``n_frames`` poses of a person swinging its arms (``speed`` radians a frame) and drifting sideways by
    ``drift`` (fraction of the width) over the sequence."""
    if n_frames < 1:
        raise ValueError("n_frames must be >= 1")
    out = []
    for i in range(n_frames):
        frac = i / max(1, n_frames - 1)
        out.append(
            synthetic_pose(
                width,
                height,
                t=phase + speed * i,
                shift=(drift * (frac - 0.5), 0.0),
                scale=scale,
                turn=math.sin(phase + speed * i) * 0.5,
            )
        )
    return out


def blob_person(pose: Pose, *, seed: int = 0, background: tuple[int, int, int] | None = None) -> np.ndarray:
    """A synthetic "person" image (H, W, 3) uint8 for ``pose``: coloured soft limbs, a face disc with dark eyes and
    mouth, and hand blobs; the palette (the person's identity) is fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    shirt, trousers, skin = (tuple(int(c) for c in rng.integers(40, 230, 3)) for _ in range(3))
    bg = background or tuple(int(c) for c in rng.integers(0, 60, 3))
    w, h = pose.width, pose.height
    u = min(w, h) / 64
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    b = pose.body
    for i, j in ((2, 5), (2, 8), (5, 11), (8, 11), (2, 3), (3, 4), (5, 6), (6, 7)):
        draw.polygon(_ellipse(b[i, :2], b[j, :2], 2.5 * u), fill=shirt)
    for i, j in ((8, 9), (9, 10), (11, 12), (12, 13)):
        draw.polygon(_ellipse(b[i, :2], b[j, :2], 2.5 * u), fill=trousers)
    head_r = float(np.linalg.norm(pose.face[8, :2] - pose.face[27, :2])) * 0.75
    _disc(draw, b[0, :2], max(2.0, head_r), skin)
    for idx in (range(36, 42), range(42, 48)):
        _disc(draw, pose.face[list(idx), :2].mean(0), max(0.7, 0.8 * u), (20, 20, 20))
    _disc(draw, pose.face[48:60, :2].mean(0), max(0.7, 0.9 * u), (150, 30, 40))
    for hand in pose.hands:
        for p in hand[:, :2]:
            _disc(draw, p, max(0.6, 0.7 * u), skin)
    return np.asarray(img)


def synthetic_clip(
    n_frames: int, width: int = 32, height: int = 32, *, seed: int = 0, phase: float = 0.0
) -> tuple[np.ndarray, list[Pose]]:
    """A training "video" of a blob person (identity fixed by ``seed``) swinging its arms, with its poses."""
    poses = synthetic_pose_sequence(n_frames, width, height, phase=phase, speed=0.5)
    return np.stack([blob_person(p, seed=seed) for p in poses]), poses
