"""Clip reading/writing round trips and the synthetic clips."""

from __future__ import annotations

import pytest
import torch
from i2v_leak.video_io import (
    iter_video_clips,
    list_videos,
    load_image,
    read_video,
    save_gif,
    save_strip,
    synthetic_clips,
    to_pil_frames,
)


def test_synthetic_clips_move_and_are_deterministic():
    a = synthetic_clips(3, 4, 16, 24, torch.Generator().manual_seed(0))
    b = synthetic_clips(3, 4, 16, 24, torch.Generator().manual_seed(0))
    assert a.shape == (3, 4, 3, 16, 24)
    assert torch.equal(a, b)
    assert float(a.min()) >= -1
    assert float(a.max()) <= 1
    assert float((a[:, 1:] - a[:, :-1]).abs().mean()) > 0


def test_gif_and_frame_folder_round_trip(tmp_path):
    clip = (synthetic_clips(1, 5, 16, 16, torch.Generator().manual_seed(1))[0] + 1) / 2
    save_gif(clip, tmp_path / "clips" / "a.gif")
    frames_dir = tmp_path / "clips" / "b"
    frames_dir.mkdir()
    for i, im in enumerate(to_pil_frames(clip)):
        im.save(frames_dir / f"{i:03d}.png")
    (tmp_path / "clips" / "notes.txt").write_text("not a video")
    paths = list_videos(tmp_path / "clips")
    assert [p.name for p in paths] == ["a.gif", "b"]
    png = read_video(frames_dir).float() / 255
    assert png.shape == (5, 3, 16, 16)
    assert float((png - clip).abs().max()) <= 1 / 255 + 1e-6  # PNG is lossless up to 8-bit rounding
    gif = read_video(paths[0]).float() / 255
    assert gif.shape == (5, 3, 16, 16)
    assert float((gif - clip).abs().mean()) < 0.05  # GIF palettes are lossy
    out = list(iter_video_clips(tmp_path / "clips", height=8, width=8, num_frames=3, stride=2))
    assert len(out) == 2
    assert out[0].shape == (3, 3, 8, 8)
    assert float(out[1].min()) >= -1
    assert float(out[1].max()) <= 1
    skipped = []
    assert list(iter_video_clips(tmp_path / "clips", height=8, width=8, num_frames=9, skipped=skipped)) == []
    assert len(skipped) == 2


def test_errors_and_images(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_videos(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "nope.gif")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        read_video(tmp_path / "x.txt")
    clip = (synthetic_clips(1, 1, 20, 40, torch.Generator().manual_seed(2))[0] + 1) / 2
    to_pil_frames(clip)[0].save(tmp_path / "img.png")
    im = load_image(tmp_path / "img.png", 16, 16)
    assert im.size == (16, 16)
    p = save_strip([("a", clip.expand(3, -1, -1, -1)), ("b", clip)], tmp_path / "strip.png", title="t")
    assert p.is_file()
    assert p.stat().st_size > 0


def test_mp4_round_trip_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    clip = ((synthetic_clips(1, 6, 32, 32, torch.Generator().manual_seed(3))[0] + 1) / 2 * 255).byte()
    path = tmp_path / "c.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for fr in clip.permute(0, 2, 3, 1).numpy():
            for pkt in stream.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    got = read_video(path)
    assert got.shape == (6, 3, 32, 32)
    assert float((got.float() - clip.float()).abs().mean()) < 25
