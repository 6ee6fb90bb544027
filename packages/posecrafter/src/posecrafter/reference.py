"""Reference-frame selection (PoseCrafter §3.2): the training frame whose pose is closest to the target sequence."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from posecrafter.poses import Pose

__all__ = ["DISTANCES", "pose_distance", "select_reference_frame"]

DISTANCES = ("normalized", "l2")


def _normalized(p: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Translate the confident points to their mean and scale them to unit RMS radius."""
    q = p[ok, :2].astype(np.float64)
    q = q - q.mean(0)
    r = np.sqrt((q**2).sum(1).mean())
    return q / max(r, 1e-9)


def pose_distance(
    a: Pose, b: Pose, kind: str = "normalized", threshold: float = 0.3, part: str = "body"
) -> float:
    """Mean L2 distance between the keypoints confident in both poses: ``"l2"`` in pixels (b rescaled to a's
    canvas), ``"normalized"`` after removing translation and scale (position and size of the person do not
    count). ``inf`` when fewer than 2 keypoints are shared."""
    if (b.width, b.height) != (a.width, a.height):
        b = b.scaled(a.width, a.height)
    pa, pb = a.part(part), b.part(part)
    ok = (pa[:, 2] >= threshold) & (pb[:, 2] >= threshold)
    if ok.sum() < 2:
        return float("inf")
    if kind == "l2":
        return float(np.linalg.norm(pa[ok, :2] - pb[ok, :2], axis=1).mean())
    if kind == "normalized":
        return float(np.linalg.norm(_normalized(pa, ok) - _normalized(pb, ok), axis=1).mean())
    raise ValueError(f"unknown distance {kind!r}: use one of {DISTANCES} or a callable")


def select_reference_frame(
    train_poses: Sequence[Pose],
    target_poses: Sequence[Pose],
    distance: str | Callable[[Pose, Pose], float] = "normalized",
) -> int:
    """Index of the training frame whose pose has the smallest mean distance to the target poses (ties: the
    earliest frame). ``distance`` is a `pose_distance` kind or a callable ``(train_pose, target_pose) -> float``."""
    if not train_poses or not target_poses:
        raise ValueError("select_reference_frame needs at least one training pose and one target pose")
    fn = distance if callable(distance) else (lambda a, b: pose_distance(a, b, distance))
    scores = [np.mean([fn(tp, q) for q in target_poses]) for tp in train_poses]
    if not np.isfinite(scores).any():
        raise ValueError("no training pose shares confident keypoints with the target poses")
    return int(np.argmin(scores))
