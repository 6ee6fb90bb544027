import json

import numpy as np
import pytest
from posecrafter.poses import (
    N_BODY,
    Pose,
    PoseFormatError,
    from_body25,
    from_coco17,
    read_pose_json,
    read_pose_sequence,
    write_pose_json,
)
from posecrafter.render import blob_person, pose_images, render_pose, synthetic_pose, synthetic_pose_sequence


def test_openpose_json_round_trip(tmp_path):
    seq = synthetic_pose_sequence(3, 48, 40)
    write_pose_json(seq, tmp_path / "p.json")
    back = read_pose_sequence(tmp_path / "p.json")
    assert len(back) == 3
    for a, b in zip(seq, back):
        np.testing.assert_allclose(a.body, b.body, rtol=1e-6)
        np.testing.assert_allclose(a.face, b.face, rtol=1e-6)
        np.testing.assert_allclose(a.hands, b.hands, rtol=1e-6)
        assert (b.width, b.height) == (48, 40)


def test_single_openpose_file_needs_canvas_and_drops_pupils(tmp_path):
    pose = synthetic_pose(64, 64)
    person = pose.to_openpose_dict()["people"][0]
    person["face_keypoints_2d"] += [1.0, 2.0, 1.0, 3.0, 4.0, 1.0]  # OpenPose's 70-point face
    (tmp_path / "f.json").write_text(json.dumps({"people": [person]}))
    with pytest.raises(PoseFormatError, match="no canvas size"):
        read_pose_json(tmp_path / "f.json")
    got = read_pose_json(tmp_path / "f.json", 64, 64)
    np.testing.assert_allclose(got.face, pose.face, rtol=1e-6)


def test_wrong_keypoint_count_is_one_line_error(tmp_path):
    (tmp_path / "bad.json").write_text(
        json.dumps({"canvas_width": 8, "canvas_height": 8, "people": [{"pose_keypoints_2d": [0.0] * 30}]})
    )
    with pytest.raises(PoseFormatError, match="30 numbers") as e:
        read_pose_json(tmp_path / "bad.json")
    assert "\n" not in str(e.value)
    with pytest.raises(PoseFormatError, match="expected 68 keypoints"):
        Pose(np.zeros((18, 3)), 8, 8, face=np.zeros((60, 3)))


def test_body_conversions():
    coco = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
    op = from_coco17(coco)
    assert op.shape == (N_BODY, 3)
    np.testing.assert_allclose(op[2], coco[6])  # right shoulder
    np.testing.assert_allclose(op[1, :2], (coco[5, :2] + coco[6, :2]) / 2)
    b25 = np.arange(25 * 3, dtype=np.float32).reshape(25, 3)
    np.testing.assert_allclose(from_body25(b25)[8], b25[9])  # r-hip skips BODY_25's mid-hip


def test_dwpose_dict(tmp_path):
    pose = synthetic_pose(100, 50)
    d = {
        "canvas_width": 100,
        "canvas_height": 50,
        "bodies": {"candidate": (pose.body[:, :2] / [100, 50]).tolist(), "subset": [list(range(18))]},
        "faces": [(pose.face[:, :2] / [100, 50]).tolist()],
        "hands": [(h[:, :2] / [100, 50]).tolist() for h in pose.hands],
    }
    d["hands"][1][3] = [-1.0, -1.0]  # a missing point
    (tmp_path / "dw.json").write_text(json.dumps(d))
    got = read_pose_json(tmp_path / "dw.json")
    np.testing.assert_allclose(got.body, pose.body, atol=1e-4)
    np.testing.assert_allclose(got.face, pose.face, atol=1e-4)
    assert got.hands[1, 3, 2] == 0 and got.hands[1, 4, 2] == 1


def test_render_openpose_colours():
    pose = synthetic_pose(128, 128)
    img = render_pose(pose, hands=False, face=False)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    x, y = pose.body[1, :2].round().astype(int)  # the neck joint is drawn in OpenPose's neck colour
    assert tuple(img[y, x]) == (255, 85, 0)
    mid = (
        ((pose.body[2, :2] + pose.body[3, :2]) / 2).round().astype(int)
    )  # upper right arm at 60 % of its colour
    assert tuple(img[mid[1], mid[0]]) == (153, 102, 0)
    # dropping a keypoint's confidence removes it and its limbs
    pose.body[4, 2] = 0.0
    x4, y4 = pose.body[4, :2].round().astype(int)
    assert img[y4, x4].any() and not render_pose(pose, hands=False, face=False)[y4, x4].any()
    full = render_pose(synthetic_pose(128, 128))
    fx, fy = synthetic_pose(128, 128).face[30, :2].round().astype(int)
    assert tuple(full[fy, fx]) == (255, 255, 255)


def test_sequences_and_blobs():
    seq = synthetic_pose_sequence(4, 32, 32, speed=0.5)
    imgs = pose_images(seq)
    assert imgs.shape == (4, 32, 32, 3)
    assert not np.array_equal(imgs[0], imgs[1])  # the arms move
    a, b = blob_person(seq[0], seed=0), blob_person(seq[0], seed=1)
    assert a.shape == (32, 32, 3) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="n_frames"):
        synthetic_pose_sequence(0)
