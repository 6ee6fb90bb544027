from types import SimpleNamespace

import numpy as np
import pytest
from posecrafter.detect import PoseDetector, poses_from_detections


def _kp(x, y, s=0.9):
    return SimpleNamespace(x=x, y=y, score=s)


def test_controlnet_aux_results_convert_to_pixels():
    body = [_kp(0.5, 0.25)] + [None] * 17
    hand = [_kp(0.1, 0.2)] * 21
    res = SimpleNamespace(
        body=SimpleNamespace(keypoints=body), left_hand=hand, right_hand=None, face=[_kp(0.5, 0.5, None)] * 68
    )
    pose = poses_from_detections([res], 200, 100)
    np.testing.assert_allclose(pose.body[0], [100.0, 25.0, 0.9], rtol=1e-6)
    assert pose.body[1, 2] == 0 and pose.hands[1].sum() == 0
    np.testing.assert_allclose(pose.hands[0, 3], [20.0, 20.0, 0.9], rtol=1e-6)
    assert pose.face[0, 2] == 1.0
    assert poses_from_detections([], 10, 10) is None


def test_detector_needs_a_local_weights_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights folder not found"):
        PoseDetector(tmp_path / "missing")
