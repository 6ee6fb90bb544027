"""Pose detection on a user's frames through controlnet-aux's OpenPose (``pip install 'posecrafter[detect]'``).

Only local weights: controlnet-aux would otherwise download them at run time. Point ``weights`` at a folder
holding ``body_pose_model.pth``, ``hand_pose_model.pth`` and ``facenet.pth`` (lllyasviel/Annotators).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from posecrafter.poses import N_BODY, N_FACE, N_HAND, Pose

__all__ = ["PoseDetector", "poses_from_detections"]


def _points(kps: Any, n: int, w: int, h: int) -> np.ndarray:
    out = np.zeros((n, 3), np.float32)
    if kps is None:
        return out
    for i, k in enumerate(list(kps)[:n]):
        if k is None:
            continue
        x, y = (k.x, k.y) if hasattr(k, "x") else (k[0], k[1])
        score = getattr(k, "score", 1.0)
        out[i] = (x * w, y * h, 1.0 if score is None else float(score))
    return out


def poses_from_detections(results: Sequence[Any], width: int, height: int) -> Pose | None:
    """Convert controlnet-aux ``PoseResult``s (normalised coordinates) of one frame to a `Pose` (the first person),
    or None when nobody was found."""
    if not results:
        return None
    r = results[0]
    body = _points(r.body.keypoints, N_BODY, width, height)
    face = _points(getattr(r, "face", None), N_FACE, width, height)
    hands = np.stack(
        [_points(getattr(r, "left_hand", None), N_HAND, width, height),
         _points(getattr(r, "right_hand", None), N_HAND, width, height)]
    )  # fmt: skip
    return Pose(body, width, height, face, hands)


class PoseDetector:
    """``PoseDetector(weights_dir)(frames) -> list[Pose]``: OpenPose body + hands + face from local weights."""

    def __init__(self, weights: str | os.PathLike[str], device: str = "cpu") -> None:
        p = Path(weights)
        if not p.is_dir():
            raise FileNotFoundError(
                f"{p}: pose-detector weights folder not found; download body_pose_model.pth, hand_pose_model.pth "
                "and facenet.pth (lllyasviel/Annotators) into a folder and pass it"
            )
        try:
            from controlnet_aux import OpenposeDetector
        except ImportError as exc:
            raise ImportError(
                "pose detection needs controlnet-aux: pip install 'posecrafter[detect]'"
            ) from exc
        self._det = OpenposeDetector.from_pretrained(str(p)).to(device)

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Pose]:
        out = []
        for i, f in enumerate(frames):
            h, w = f.shape[:2]
            pose = poses_from_detections(
                self._det.detect_poses(f, include_hand=True, include_face=True), w, h
            )
            if pose is None:
                raise ValueError(f"frame {i}: no person detected; give poses as JSON files instead")
            out.append(pose)
        return out
