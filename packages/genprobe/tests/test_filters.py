"""The probe's filters: exact frequency selection, complements, Gaussian transfer, edges, perturbations."""

import math

import pytest
import torch
from genprobe.filters import (
    ImageFilter,
    bandpass,
    blur_perturb,
    canny_edges,
    gaussian_highpass,
    gaussian_lowpass,
    highpass,
    jpeg_perturb,
    lowpass,
    parse_filter,
    parse_perturbation,
    resize_perturb,
    sobel_edges,
)

from gen_common.testing import assert_close

H, W = 16, 12  # non-square on purpose: k_y counts cycles per height, k_x cycles per width


def cosine(fx: int, fy: int, h: int = H, w: int = W, phase: float = 0.3) -> torch.Tensor:
    v, u = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    return torch.cos(2 * math.pi * (fx * u / w + fy * v / h) + phase)


FREQS = [(0, 0), (1, 0), (0, 3), (3, 4), (6, 0), (0, 8), (5, 5), (2, 7), (6, 8)]  # (6, 8): both Nyquist


@pytest.mark.parametrize(("fx", "fy"), FREQS)
@pytest.mark.parametrize("radius", [0.0, 2.5, 5.0, 7.0, 10.0])
def test_sinusoid_passes_lowpass_iff_its_radius_is_within_the_cutoff(fx, fy, radius):
    x = cosine(fx, fy)
    f = math.hypot(fx, fy)
    inside = f <= radius
    assert_close(lowpass(x, radius), x if inside else torch.zeros_like(x), atol=1e-10)
    assert_close(highpass(x, radius), torch.zeros_like(x) if inside else x, atol=1e-10)


@pytest.mark.parametrize(("fx", "fy"), FREQS)
def test_bandpass_keeps_exactly_the_annulus(fx, fy):
    x = cosine(fx, fy)
    f = math.hypot(fx, fy)
    expect = x if 3.0 < f <= 6.0 else torch.zeros_like(x)
    assert_close(bandpass(x, 3.0, 6.0), expect, atol=1e-10)


def test_low_plus_high_is_identity_and_bands_partition_the_image():
    x = torch.randn(3, 2, 17, 20, generator=torch.Generator().manual_seed(0))
    assert_close(lowpass(x, 3.7) + highpass(x, 3.7), x, atol=1e-5)
    parts = lowpass(x, 2) + bandpass(x, 2, 6) + highpass(x, 6)
    assert_close(parts, x, atol=1e-5)
    # Projections: applying a filter twice changes nothing, and low-pass output has no high band.
    lp = lowpass(x, 4)
    assert_close(lowpass(lp, 4), lp, atol=1e-5)
    assert_close(highpass(lp, 4), torch.zeros_like(x), atol=1e-5)
    assert lp.dtype == x.dtype
    assert lp.shape == x.shape


def test_reflect_boundary_avoids_ringing_on_non_periodic_images():
    # A ramp jumps from 1 back to 0 across the DFT's wrap-around: the circular low-pass rings along the
    # border, the mirror-extended one keeps the smooth ramp.
    ramp = torch.linspace(0, 1, 32, dtype=torch.float64).expand(32, 32)
    err_circ = float((lowpass(ramp, 4) - ramp).abs().max())
    err_refl = float((lowpass(ramp, 4, boundary="reflect") - ramp).abs().max())
    assert err_refl < err_circ / 3
    x = torch.randn(2, 3, 15, 18, generator=torch.Generator().manual_seed(3))
    assert_close(lowpass(x, 3, boundary="reflect") + highpass(x, 3, boundary="reflect"), x, atol=1e-5)
    assert str(parse_filter("highpass:8:reflect")) == "highpass:8:reflect"
    assert_close(ImageFilter("highpass:8:reflect")(x), highpass(x, 8, boundary="reflect"))
    with pytest.raises(ValueError, match="boundary"):
        parse_filter("sobel:reflect")


def test_cutoff_units_are_the_same_for_any_image_size():
    # 4 cycles per image is below a cutoff of 5 at 16 px and at 64 px alike.
    for n in (16, 64):
        x = cosine(4, 0, n, n)
        assert_close(lowpass(x, 5), x, atol=1e-10)
        assert_close(lowpass(x, 3.9), torch.zeros_like(x), atol=1e-10)


@pytest.mark.parametrize(("fx", "fy"), [(0, 0), (2, 1), (3, 4), (6, 8)])
def test_gaussian_lowpass_scales_a_sinusoid_by_its_transfer(fx, fy):
    x = cosine(fx, fy)
    r, f = 3.0, math.hypot(fx, fy)
    gain = math.exp(-(f**2) / (2 * r**2))
    assert_close(gaussian_lowpass(x, r), gain * x, atol=1e-10)
    assert_close(gaussian_highpass(x, r), (1 - gain) * x, atol=1e-10)


def test_gaussian_fft_and_kornia_spatial_blur_agree():
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for r in (2.0, 3.0):
        fast = gaussian_lowpass(x, r)
        slow = gaussian_lowpass(x, r, method="kornia")
        assert_close(slow, fast, atol=2e-4)
    assert (gaussian_lowpass(x, 2.0) - x).abs().max() > 0.5  # it does blur


def test_sobel_is_zero_on_flat_images_and_fires_at_a_step_edge():
    flat = torch.full((1, 3, 12, 12), 0.4)
    assert sobel_edges(flat).abs().max() < 1e-6
    step = torch.zeros(1, 1, 12, 12)
    step[..., 6:] = 1.0
    e = sobel_edges(step)[0, 0]
    assert e.shape == (12, 12)
    assert e[:, 5:7].min() > 0.2  # the two columns at the step
    assert e[:, :4].abs().max() < 1e-6
    assert e[:, 8:].abs().max() < 1e-6


def test_canny_marks_the_boundary_of_a_square_and_nothing_on_flat_images():
    img = torch.zeros(1, 3, 32, 32)
    img[..., 8:24, 8:24] = 1.0
    e = canny_edges(img)[0, 0]
    assert set(e.unique().tolist()) <= {0.0, 1.0}
    assert e[8:24, 8:24][4:-4, 4:-4].sum() == 0  # inside
    assert e[:4].sum() == 0
    assert e[:, :4].sum() == 0
    assert e[6:10, 10:22].sum() >= 8  # the top side
    assert canny_edges(torch.full((1, 1, 16, 16), 0.5)).sum() == 0


def test_filter_specs_parse_and_report_channels():
    assert str(parse_filter("lowpass:8")) == "lowpass:8"
    assert str(parse_filter("bandpass:2:6.5")) == "bandpass:2:6.5"
    assert str(parse_filter("edges")) == "canny"
    assert ImageFilter("canny").out_channels(3) == 1
    assert ImageFilter("highpass:2").out_channels(3) == 3
    x = torch.rand(2, 3, 16, 16)
    assert_close(ImageFilter("lowpass:3")(x), lowpass(x, 3))
    assert ImageFilter("sobel")(x).shape == (2, 1, 16, 16)
    for bad in ("lowpass", "lowpass:-1", "bandpass:5:2", "median:3", "highpass:x", "canny:0.5:0.1"):
        with pytest.raises(ValueError):
            parse_filter(bad)
    with pytest.raises(ValueError, match="floating-point"):
        lowpass(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 1)


def test_jpeg_perturbation_error_grows_as_quality_drops():
    g = torch.Generator().manual_seed(2)
    x = lowpass(torch.rand(4, 3, 32, 32, generator=g), 6).clamp(0, 1)
    err = {q: float((jpeg_perturb(x, q) - x).abs().mean()) for q in (100, 90, 30, 5)}
    assert err[100] < err[90] < err[30] < err[5]
    gray = x[:, :1]  # no chroma subsampling: quality 100 is nearly lossless
    assert jpeg_perturb(gray, 50).shape == (4, 1, 32, 32)
    assert float((jpeg_perturb(gray, 100) - gray).abs().mean()) < 0.005
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        jpeg_perturb(x * 3, 90)


def test_resize_perturbation_is_a_low_pass():
    assert_close(
        resize_perturb(cosine(1, 1, 32, 32)[None, None].float(), 1.0), cosine(1, 1, 32, 32)[None, None]
    )
    low = cosine(2, 0, 32, 32)[None, None].float()
    high = cosine(15, 0, 32, 32)[None, None].float()
    keep_low = float((resize_perturb(low, 0.5) * low).mean() / (low * low).mean())
    keep_high = float((resize_perturb(high, 0.5) * high).mean() / (high * high).mean())
    assert keep_low > 0.8
    assert abs(keep_high) < 0.1


def test_perturbation_specs():
    x = torch.rand(2, 3, 16, 16)
    assert parse_perturbation("none") is None
    assert_close(parse_perturbation("blur:0")(x), x)
    assert_close(parse_perturbation("resize:0.5")(x), resize_perturb(x, 0.5))
    assert float((blur_perturb(x, 1.0) - x).abs().mean()) > 0.05
    for bad in ("jpeg:0", "resize:0", "sharpen:1", "jpeg:abc"):
        with pytest.raises(ValueError):
            parse_perturbation(bad)
