import numpy as np
import pytest
from posecrafter.reference import pose_distance, select_reference_frame
from posecrafter.render import synthetic_pose


def test_selects_the_closest_training_pose():
    train = [synthetic_pose(64, 64, t=t) for t in (0.0, 1.0, 2.0, 3.0)]
    targets = [synthetic_pose(64, 64, t=2.05, shift=(0.1, 0.0)), synthetic_pose(64, 64, t=1.95, scale=0.8)]
    assert select_reference_frame(train, targets) == 2  # normalized: position and size do not count
    # l2 counts position: a shifted copy of frame 0 picks frame 0 over the others only by shape
    assert select_reference_frame(train, [synthetic_pose(64, 64, t=0.0)], distance="l2") == 0
    assert select_reference_frame(train, targets, distance=lambda a, b: -pose_distance(a, b)) != 2


def test_distance_properties():
    a = synthetic_pose(64, 64, t=0.3)
    assert pose_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    big = a.scaled(128, 128)
    assert pose_distance(a, big, "l2") == pytest.approx(0.0, abs=1e-4)  # rescaled to a's canvas
    b = synthetic_pose(64, 64, t=0.3)
    b.body[:, 2] = 0
    assert pose_distance(a, b) == np.inf
    with pytest.raises(ValueError, match="unknown distance"):
        pose_distance(a, a, "cosine")
    with pytest.raises(ValueError, match="at least one"):
        select_reference_frame([], [a])
