"""Input images: RGBA alpha, border matte, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from microdreamer.images import load_image
from PIL import Image


def test_rgba_alpha_and_white_composite(tmp_path):
    a = np.zeros((40, 40, 4), np.uint8)
    a[10:30, 10:30] = [200, 20, 20, 255]
    Image.fromarray(a, "RGBA").save(tmp_path / "o.png")
    rgb, mask = load_image(tmp_path / "o.png", 20)
    assert rgb.shape == (1, 3, 20, 20) and mask.shape == (1, 1, 20, 20)
    assert mask[0, 0, 10, 10] == pytest.approx(1.0) and mask[0, 0, 0, 0] == pytest.approx(0.0)
    assert rgb[0, :, 0, 0].tolist() == pytest.approx([1.0, 1.0, 1.0])  # background composited to white
    assert rgb[0, 0, 10, 10] == pytest.approx(200 / 255, abs=1e-3)


def test_rgb_on_plain_background_uses_border_matte(tmp_path):
    a = np.full((32, 32, 3), 240, np.uint8)
    a[8:24, 8:24] = [10, 120, 30]
    Image.fromarray(a).save(tmp_path / "o.jpg", quality=95)
    _, mask = load_image(tmp_path / "o.jpg", 32)
    assert mask[0, 0, 16, 16] > 0.9 and mask[0, 0, 1, 1] < 0.1


def test_errors(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot decode"):
        load_image(tmp_path / "x.png")
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(ValueError, match="no foreground"):
        load_image(tmp_path / "flat.png")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")
