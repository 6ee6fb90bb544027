"""Whole-body keypoints: OpenPose-18 body, 68 face landmarks, 21 points per hand, each with a confidence.

Coordinates are pixels of a canvas of ``(width, height)``; a point with confidence 0 is missing. Readers accept
OpenPose JSON (BODY_18/COCO-18, BODY_25 or COCO-17 bodies; ``*_keypoints_2d`` lists), the "OpenPose JSON" that the
ControlNet web UIs write (the same plus ``canvas_width``/``canvas_height``), and DWPose's dictionaries
(``bodies.candidate``/``subset``, ``faces``, ``hands`` in normalised coordinates), and whole-body 133-point arrays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BODY_COLORS",
    "BODY_LIMBS",
    "N_BODY",
    "N_FACE",
    "N_HAND",
    "Pose",
    "PoseFormatError",
    "from_body25",
    "from_coco17",
    "from_wholebody133",
    "read_pose_json",
    "read_pose_sequence",
    "write_pose_json",
]

N_BODY, N_FACE, N_HAND = 18, 68, 21

# OpenPose-18 order: nose, neck, r-shoulder, r-elbow, r-wrist, l-shoulder, l-elbow, l-wrist, r-hip, r-knee,
# r-ankle, l-hip, l-knee, l-ankle, r-eye, l-eye, r-ear, l-ear. Limbs (0-based) and colours are OpenPose's
# rendering convention, which ControlNet-OpenPose was trained on.
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
BODY_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
# Each finger is a chain from the wrist (0): 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 little.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)
)

_COCO17_TO_OP18 = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)  # -1: neck = mid-shoulders
_BODY25_TO_OP18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


class PoseFormatError(ValueError):
    """A pose file or array that does not have the expected layout (one line; the CLI exits with code 2)."""


def _as_points(a: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim == 1 and arr.size in (2 * n, 3 * n):
        arr = arr.reshape(n, arr.size // n)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] not in (2, 3):
        raise PoseFormatError(
            f"{what}: expected {n} keypoints as ({n}, 2|3) or a flat list of {2 * n}/{3 * n} numbers, "
            f"got shape {tuple(np.shape(a))}"
        )
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.ones((n, 1), np.float32)], axis=1)
    if not np.isfinite(arr).all():
        raise PoseFormatError(f"{what}: keypoints contain NaN or inf")
    return arr


@dataclass
class Pose:
    """One person in one frame: ``body`` (18, 3), ``face`` (68, 3), ``hands`` (2, 21, 3) as (x, y, confidence);
    hands are (left, right) as the person sees them (OpenPose's ``hand_left``/``hand_right``)."""

    body: np.ndarray
    width: int
    height: int
    face: np.ndarray = field(default_factory=lambda: np.zeros((N_FACE, 3), np.float32))
    hands: np.ndarray = field(default_factory=lambda: np.zeros((2, N_HAND, 3), np.float32))

    def __post_init__(self) -> None:
        self.body = _as_points(self.body, N_BODY, "body")
        self.face = _as_points(self.face, N_FACE, "face")
        hands = np.asarray(self.hands, dtype=np.float32)
        if hands.shape[:2] != (2, N_HAND):
            raise PoseFormatError(f"hands: expected (2, {N_HAND}, 2|3), got shape {hands.shape}")
        self.hands = np.stack([_as_points(h, N_HAND, "hand") for h in hands])
        if self.width <= 0 or self.height <= 0:
            raise PoseFormatError(f"canvas must be positive, got {self.width}x{self.height}")

    def part(self, name: str) -> np.ndarray:
        """Keypoints (N, 3) of ``body``, ``face``, ``left_hand`` or ``right_hand``."""
        parts = {
            "body": self.body,
            "face": self.face,
            "left_hand": self.hands[0],
            "right_hand": self.hands[1],
        }
        if name not in parts:
            raise ValueError(f"unknown part {name!r}: use one of {sorted(parts)}")
        return parts[name]

    def scaled(self, width: int, height: int) -> Pose:
        """The same pose on a canvas of another size (coordinates scaled, confidences kept)."""
        s = np.array([width / self.width, height / self.height, 1.0], np.float32)
        return Pose(self.body * s, width, height, self.face * s, self.hands * s)

    def to_openpose_dict(self) -> dict[str, Any]:
        return {
            "canvas_width": self.width,
            "canvas_height": self.height,
            "people": [
                {
                    "pose_keypoints_2d": self.body.reshape(-1).tolist(),
                    "face_keypoints_2d": self.face.reshape(-1).tolist(),
                    "hand_left_keypoints_2d": self.hands[0].reshape(-1).tolist(),
                    "hand_right_keypoints_2d": self.hands[1].reshape(-1).tolist(),
                }
            ],
        }


def from_coco17(points: Any) -> np.ndarray:
    """COCO-17 body (17, 2|3) → OpenPose-18 (the neck is the shoulders' midpoint, confident if both are)."""
    p = _as_points(points, 17, "COCO-17 body")
    out = np.zeros((N_BODY, 3), np.float32)
    for i, j in enumerate(_COCO17_TO_OP18):
        if j >= 0:
            out[i] = p[j]
    out[1, :2] = (p[5, :2] + p[6, :2]) / 2
    out[1, 2] = min(p[5, 2], p[6, 2])
    return out


def from_body25(points: Any) -> np.ndarray:
    """OpenPose BODY_25 (25, 2|3) → OpenPose-18 (mid-hip and feet dropped)."""
    p = _as_points(points, 25, "BODY_25 body")
    return p[list(_BODY25_TO_OP18)].copy()


def from_wholebody133(points: Any, width: int, height: int) -> Pose:
    """A COCO-WholeBody / DWPose 133-point array: 17 body, 6 feet, 68 face, 21 left hand, 21 right hand."""
    p = _as_points(points, 133, "whole-body")
    return Pose(from_coco17(p[:17]), width, height, p[23:91], np.stack([p[91:112], p[112:133]]))


def _body_from_flat(flat: Sequence[float], where: str) -> np.ndarray:
    n = len(flat)
    for k, conv in ((N_BODY, None), (25, from_body25), (17, from_coco17)):
        if n in (2 * k, 3 * k):
            pts = _as_points(flat, k, where)
            return pts if conv is None else conv(pts)
    raise PoseFormatError(
        f"{where}: pose_keypoints_2d has {n} numbers; expected 18, 25 or 17 keypoints × 3 (x, y, confidence)"
    )


def _openpose_person(person: dict[str, Any], width: int, height: int, where: str) -> Pose:
    body = _body_from_flat(person.get("pose_keypoints_2d", []), where)
    face = person.get("face_keypoints_2d") or np.zeros((N_FACE, 3))
    # OpenPose writes 70 face points (68 + two pupils); the pupils are not part of the 68-point layout.
    if len(face) == 70 * 3:
        face = np.asarray(face, np.float32).reshape(70, 3)[:N_FACE]
    left = person.get("hand_left_keypoints_2d") or np.zeros((N_HAND, 3))
    right = person.get("hand_right_keypoints_2d") or np.zeros((N_HAND, 3))
    try:
        hands = np.stack(
            [_as_points(left, N_HAND, f"{where} hand_left"), _as_points(right, N_HAND, f"{where} hand_right")]
        )
        return Pose(body, width, height, _as_points(face, N_FACE, f"{where} face"), hands)
    except PoseFormatError as exc:
        raise PoseFormatError(f"{where}: {exc}") from None


def _dwpose(d: dict[str, Any], width: int, height: int, where: str) -> Pose:
    """DWPose's dict: normalised ``bodies.candidate`` (K, 2) indexed by ``bodies.subset`` (people, 18) with -1 for
    missing, ``faces`` (people, 68, 2), ``hands`` (2·people, 21, 2) with coordinates < 0 for missing."""
    scale = np.array([width, height], np.float32)
    cand = np.asarray(d["bodies"]["candidate"], np.float32).reshape(-1, 2)
    subset = np.asarray(d["bodies"]["subset"], np.float32)
    if subset.ndim != 2 or subset.shape[1] < N_BODY:
        raise PoseFormatError(f"{where}: bodies.subset must be (people, 18), got {subset.shape}")
    body = np.zeros((N_BODY, 3), np.float32)
    for i, idx in enumerate(subset[0, :N_BODY]):
        if idx >= 0:
            body[i] = (*(cand[int(idx)] * scale), 1.0)

    def pts(a: Any, n: int, what: str) -> np.ndarray:
        arr = np.asarray(a, np.float32).reshape(-1, 2)
        if arr.shape[0] != n:
            raise PoseFormatError(f"{where}: {what} has {arr.shape[0]} points, expected {n}")
        conf = ((arr >= 0).all(1) & (arr <= 1).all(1)).astype(np.float32)
        return np.concatenate([arr * scale * conf[:, None], conf[:, None]], axis=1)

    faces = np.asarray(d.get("faces", np.zeros((0, N_FACE, 2))), np.float32)
    hands = np.asarray(d.get("hands", np.zeros((0, N_HAND, 2))), np.float32)
    face = pts(faces[0], N_FACE, "faces[0]") if len(faces) else np.zeros((N_FACE, 3), np.float32)
    hs = [
        pts(hands[i], N_HAND, f"hands[{i}]") if len(hands) > i else np.zeros((N_HAND, 3), np.float32)
        for i in range(2)
    ]
    return Pose(body, width, height, face, np.stack(hs))


def read_pose_json(
    path: str | os.PathLike[str], width: int | None = None, height: int | None = None, person: int = 0
) -> Pose:
    """One pose from a JSON file (OpenPose, ControlNet-UI OpenPose or DWPose layout; see module doc).

    ``width``/``height`` give the canvas when the file does not (OpenPose JSON has no canvas; DWPose's
    coordinates are normalised and need one).
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseFormatError(f"{p}: no such pose file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseFormatError(f"{p}: not valid JSON ({exc})") from None
    if isinstance(d, list) and d:  # the web UIs save a list of frames with one entry
        d = d[0]
    if not isinstance(d, dict):
        raise PoseFormatError(f"{p}: expected a JSON object with 'people' (OpenPose) or 'bodies' (DWPose)")
    w = int(d.get("canvas_width", width or 0))
    h = int(d.get("canvas_height", height or 0))
    if w <= 0 or h <= 0:
        raise PoseFormatError(f"{p}: the file has no canvas size; pass width and height (--width/--height)")
    if "people" in d:
        people = d["people"]
        if len(people) <= person:
            raise PoseFormatError(f"{p}: has {len(people)} people, person {person} requested")
        return _openpose_person(people[person], w, h, str(p))
    if "bodies" in d:
        return _dwpose(d, w, h, str(p))
    raise PoseFormatError(f"{p}: expected a JSON object with 'people' (OpenPose) or 'bodies' (DWPose)")


def read_pose_sequence(
    source: str | os.PathLike[str], width: int | None = None, height: int | None = None
) -> list[Pose]:
    """A pose sequence from a folder of JSON files (sorted by name) or one JSON file holding a list of frames
    (``{"frames": [...]}`` or a list of per-frame objects)."""
    p = Path(source)
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise PoseFormatError(f"{p}: no *.json pose files in this folder")
        return [read_pose_json(f, width, height) for f in files]
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseFormatError(f"{p}: no such pose file or folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseFormatError(f"{p}: not valid JSON ({exc})") from None
    frames = d.get("frames") if isinstance(d, dict) else d
    if not isinstance(frames, list) or not frames:
        raise PoseFormatError(f"{p}: expected {{'frames': [...]}} or a non-empty list of poses")
    out = []
    for i, fr in enumerate(frames):
        w = int(fr.get("canvas_width", width or 0))
        h = int(fr.get("canvas_height", height or 0))
        if w <= 0 or h <= 0:
            raise PoseFormatError(f"{p}: frame {i} has no canvas size; pass width and height")
        where = f"{p} frame {i}"
        out.append(
            _openpose_person(fr["people"][0], w, h, where) if "people" in fr else _dwpose(fr, w, h, where)
        )
    return out


def write_pose_json(poses: Sequence[Pose], path: str | os.PathLike[str]) -> Path:
    """Write a sequence as ``{"frames": [OpenPose dicts]}`` (what `read_pose_sequence` reads back)."""
    from gen_common.atomic import atomic_write_json

    p = Path(path)
    atomic_write_json(p, {"frames": [q.to_openpose_dict() for q in poses]})
    return p
