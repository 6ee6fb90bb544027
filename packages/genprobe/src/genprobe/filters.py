"""Image filters that decide what a probe classifier may see: frequency bands, edges, and perturbations.

The paper (arXiv 2405.18029) trains distribution classifiers on filtered copies of the images and finds that
accuracy survives edge maps and high-pass filtering but drops on low-pass images: classifiers separate real from
generated images through edges and high frequencies. These are the filters of that probe.

Frequency convention (the same in the API and the CLI): a cutoff ``R`` is a radius in *cycles per image*, i.e.
frequency-index units of the discrete Fourier transform. For an ``H x W`` image the frequency ``(k_y, k_x)`` has
integer coordinates ``k_y`` in ``[-H/2, H/2)`` (cycles per image height) and ``k_x`` in ``[-W/2, W/2)`` (cycles per
image width), and radius ``r = sqrt(k_x^2 + k_y^2)``. A pure sinusoid ``cos(2*pi*(k_x*u/W + k_y*v/H))`` has radius
``r``; the largest radius of a square ``N x N`` image is ``N/sqrt(2)`` (the corners), Nyquist along an axis is
``N/2``. The ideal filters are exact complements:

    lowpass(x, R)  keeps r <= R,        highpass(x, R) keeps r > R,        bandpass(x, R1, R2) keeps R1 < r <= R2,

so ``lowpass(x, R) + highpass(x, R) == x`` and ``lowpass(x, R1) + bandpass(x, R1, R2) + highpass(x, R2) == x``.
All FFT filters are circular (the DFT's periodic boundary), computed with ``rfft2`` in float32 (float64 inputs stay
float64), and vectorised over any leading dimensions.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "FILTER_KINDS",
    "ImageFilter",
    "bandpass",
    "blur_perturb",
    "canny_edges",
    "frequency_radius",
    "gaussian_highpass",
    "gaussian_lowpass",
    "highpass",
    "jpeg_perturb",
    "lowpass",
    "parse_filter",
    "parse_perturbation",
    "resize_perturb",
    "sobel_edges",
    "to_grayscale",
]


def frequency_radius(
    height: int, width: int, *, device: torch.device | str = "cpu", half: bool = True
) -> torch.Tensor:
    """Radius ``sqrt(k_x^2 + k_y^2)`` in cycles per image of every DFT bin, float64.

    ``half=True`` gives the ``rfft2`` grid ``(H, W//2 + 1)``, else the full ``fft2`` grid ``(H, W)``.
    """
    ky = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64, device=device)
    if half:
        kx = torch.fft.rfftfreq(width, d=1.0 / width, dtype=torch.float64, device=device)
    else:
        kx = torch.fft.fftfreq(width, d=1.0 / width, dtype=torch.float64, device=device)
    return torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


@functools.lru_cache(maxsize=64)
def _transfer(kind: str, height: int, width: int, r1: float, r2: float, device: str) -> torch.Tensor:
    """The filter's transfer function on the rfft2 grid (cached: a sweep applies the same mask every batch)."""
    r = frequency_radius(height, width, device=device)
    if kind == "lowpass":
        h = r <= r1
    elif kind == "highpass":
        h = r > r1
    elif kind == "bandpass":
        h = (r > r1) & (r <= r2)
    elif kind == "gaussian-lowpass":
        return torch.exp(-(r**2) / (2.0 * r1**2))
    elif kind == "gaussian-highpass":
        return 1.0 - torch.exp(-(r**2) / (2.0 * r1**2))
    else:  # pragma: no cover - guarded by the public functions
        raise ValueError(kind)
    return h.to(torch.float64)


def _apply_transfer(
    x: torch.Tensor, kind: str, r1: float, r2: float = 0.0, boundary: str = "circular"
) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"expected an image tensor (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(
            f"expected a floating-point image tensor, got {x.dtype}; convert with x.float() / 255"
        )
    if boundary not in ("circular", "reflect"):
        raise ValueError(f"unknown boundary {boundary!r}: use 'circular' or 'reflect'")
    h, w = x.shape[-2:]
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xw = x.to(work)
    if boundary == "reflect":
        # Mirror to 2H x 2W: a periodic image without the wrap-around jump of a photo's opposite borders, so the
        # filter does not ring along the border. Its grid counts cycles per *padded* image: radii double.
        xw = torch.cat([xw, xw.flip(-1)], dim=-1)
        xw = torch.cat([xw, xw.flip(-2)], dim=-2)
        r1, r2 = 2 * r1, 2 * r2
    hh, ww = xw.shape[-2:]
    spec = torch.fft.rfft2(xw)
    mask = _transfer(kind, hh, ww, float(r1), float(r2), str(x.device)).to(work)
    out = torch.fft.irfft2(spec * mask, s=(hh, ww))[..., :h, :w]
    return out.to(x.dtype)


def _check_radius(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite radius >= 0 in cycles per image, got {value}")


def lowpass(x: torch.Tensor, radius: float, *, boundary: str = "circular") -> torch.Tensor:
    """Ideal low-pass: keep the Fourier bins with ``r <= radius`` (cycles per image), zero the rest.

    ``boundary="circular"`` filters the image as the DFT sees it (periodic: exact on periodic content, the sinusoid
    tests); ``"reflect"`` filters its mirror extension instead, which avoids ringing along the borders of photos
    whose opposite edges do not match (the complements still add up to ``x``).
    """
    _check_radius("radius", radius)
    return _apply_transfer(x, "lowpass", radius, boundary=boundary)


def highpass(x: torch.Tensor, radius: float, *, boundary: str = "circular") -> torch.Tensor:
    """Ideal high-pass: keep ``r > radius``; the exact complement of :func:`lowpass` (their sum is ``x``)."""
    _check_radius("radius", radius)
    return _apply_transfer(x, "highpass", radius, boundary=boundary)


def bandpass(x: torch.Tensor, r_min: float, r_max: float, *, boundary: str = "circular") -> torch.Tensor:
    """Ideal band-pass: keep ``r_min < r <= r_max`` (so low-pass(r_min) + band + high-pass(r_max) = x)."""
    _check_radius("r_min", r_min)
    _check_radius("r_max", r_max)
    if r_max <= r_min:
        raise ValueError(f"bandpass needs r_min < r_max, got {r_min} and {r_max}")
    return _apply_transfer(x, "bandpass", r_min, r_max, boundary=boundary)


def gaussian_lowpass(
    x: torch.Tensor, radius: float, *, method: str = "fft", boundary: str = "circular"
) -> torch.Tensor:
    """Gaussian low-pass with transfer ``exp(-r^2 / (2 R^2))``: ``R`` is the frequency standard deviation in
    cycles per image (gain e^-1/2 ~ 0.61 at ``r = R``).

    ``method="fft"`` is exact and circular. ``method="kornia"`` blurs in space with ``kornia.filters.gaussian_blur2d``
    (circular border, a kernel of +-4 sigma), using the equivalent pixel sigma ``sigma_y = H / (2 pi R)``,
    ``sigma_x = W / (2 pi R)``; the two agree up to the sampling of the kernel.
    """
    if not math.isfinite(radius) or radius <= 0:
        raise ValueError(f"the Gaussian radius must be > 0 cycles per image, got {radius}")
    if method == "fft":
        return _apply_transfer(x, "gaussian-lowpass", radius, boundary=boundary)
    if boundary not in ("circular", "reflect"):
        raise ValueError(f"unknown boundary {boundary!r}: use 'circular' or 'reflect'")
    if method != "kornia":
        raise ValueError(f"unknown method {method!r}: use 'fft' or 'kornia'")
    h, w = x.shape[-2:]
    sy, sx = h / (2 * math.pi * radius), w / (2 * math.pi * radius)

    def odd(s: float, n: int) -> int:
        k = 2 * math.ceil(4 * s) + 1
        return max(3, min(k, 2 * ((n - 1) // 2) + 1))

    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, h, w)
    out = kornia.filters.gaussian_blur2d(
        flat, (odd(sy, h), odd(sx, w)), (sy, sx), border_type=boundary, separable=True
    )
    return out.reshape(*lead, h, w)


def gaussian_highpass(
    x: torch.Tensor, radius: float, *, method: str = "fft", boundary: str = "circular"
) -> torch.Tensor:
    """``x - gaussian_lowpass(x, radius)``: transfer ``1 - exp(-r^2 / (2 R^2))``."""
    return x - gaussian_lowpass(x, radius, method=method, boundary=boundary)


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, H, W): ITU-R 601 luma for RGB, the mean for other channel counts."""
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x
    if x.shape[1] == 3:
        return kornia.color.rgb_to_grayscale(x)
    return x.mean(dim=1, keepdim=True)


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the grayscale image, (N, 1, H, W) (kornia's normalised Sobel kernels,
    replicate border). ``hypot`` instead of ``kornia.filters.sobel``'s ``sqrt(g^2 + 1e-6)``, so flat regions are
    exactly 0."""
    g = kornia.filters.spatial_gradient(to_grayscale(x.float()), mode="sobel", order=1, normalized=True)
    return torch.hypot(g[:, :, 0], g[:, :, 1]).to(x.dtype)


def canny_edges(x: torch.Tensor, low: float = 0.1, high: float = 0.2) -> torch.Tensor:
    """Binary Canny edge map of the grayscale image, (N, 1, H, W) in {0, 1}.

    kornia's thresholds apply to the gradient magnitude of images in [0, 1] (the folder sources' range).
    """
    if not 0 <= low < high:
        raise ValueError(f"Canny needs 0 <= low < high, got {low} and {high}")
    _, edges = kornia.filters.canny(to_grayscale(x.float()), low_threshold=low, high_threshold=high)
    return edges.to(x.dtype)


# ----------------------------------------------------------------------------------------------- filter specs

FILTER_KINDS = (
    "none",
    "lowpass",
    "highpass",
    "bandpass",
    "gaussian-lowpass",
    "gaussian-highpass",
    "sobel",
    "canny",
    "edges",
)
_ALIASES = {
    "identity": "none",
    "raw": "none",
    "glowpass": "gaussian-lowpass",
    "ghighpass": "gaussian-highpass",
}


@dataclass(frozen=True)
class FilterSpec:
    kind: str
    params: tuple[float, ...] = ()
    boundary: str = "circular"  # FFT filters: circular (the DFT's) or reflect (mirror-extended)

    def __str__(self) -> str:
        parts = [self.kind, *(f"{p:g}" for p in self.params)]
        if self.boundary != "circular":
            parts.append(self.boundary)
        return ":".join(parts)


_FFT_KINDS = ("lowpass", "highpass", "bandpass", "gaussian-lowpass", "gaussian-highpass")


def parse_filter(spec: str | None) -> FilterSpec:
    """Parse ``none | lowpass:R | highpass:R | bandpass:R1:R2 | gaussian-lowpass:R | gaussian-highpass:R |
    sobel | canny[:LOW:HIGH] | edges`` (R in cycles per image; ``edges`` is Canny). The FFT filters take an
    optional last ``:reflect`` (mirror-extended borders) or ``:circular`` (the default)."""
    text = (spec or "none").strip().lower()
    name, *rest = text.split(":")
    name = _ALIASES.get(name, name)
    boundary = "circular"
    if rest and rest[-1] in ("reflect", "circular"):
        if name not in _FFT_KINDS:
            raise ValueError(
                f"filter {spec!r}: only the FFT filters take a boundary ({', '.join(_FFT_KINDS)})"
            )
        boundary = rest.pop()
    if name not in FILTER_KINDS:
        raise ValueError(f"unknown filter {spec!r}: use one of {', '.join(FILTER_KINDS)} (e.g. lowpass:8)")
    try:
        params = tuple(float(p) for p in rest if p != "")
    except ValueError as exc:
        raise ValueError(f"filter {spec!r}: parameters must be numbers (e.g. lowpass:8)") from exc
    need = {
        "none": (0,),
        "lowpass": (1,),
        "highpass": (1,),
        "bandpass": (2,),
        "gaussian-lowpass": (1,),
        "gaussian-highpass": (1,),
        "sobel": (0,),
        "canny": (0, 2),
        "edges": (0, 2),
    }[name]
    if len(params) not in need:
        want = " or ".join(str(n) for n in need)
        raise ValueError(f"filter {spec!r}: {name} takes {want} parameter(s), got {len(params)}")
    if name == "edges":
        name = "canny"
    if name in ("lowpass", "highpass", "bandpass"):
        for p in params:
            _check_radius(f"{name} radius", p)
        if name == "bandpass" and params[1] <= params[0]:
            raise ValueError(f"filter {spec!r}: bandpass needs R1 < R2")
    if name.startswith("gaussian") and not params[0] > 0:
        raise ValueError(f"filter {spec!r}: the Gaussian radius must be > 0")
    if name == "canny" and params and not 0 <= params[0] < params[1]:
        raise ValueError(f"filter {spec!r}: Canny needs 0 <= LOW < HIGH")
    return FilterSpec(name, params, boundary)


class ImageFilter(torch.nn.Module):
    """A parameter-free module applying one filter spec to (N, C, H, W) batches on their device.

    Part of a classifier's forward pass, so a saved probe applies the same filter at prediction time.
    """

    def __init__(self, spec: str | FilterSpec | None = None) -> None:
        super().__init__()
        self.spec = spec if isinstance(spec, FilterSpec) else parse_filter(spec)

    @property
    def changes_channels(self) -> bool:
        return self.spec.kind in ("sobel", "canny")

    def out_channels(self, in_channels: int) -> int:
        return 1 if self.changes_channels else in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, p, b = self.spec.kind, self.spec.params, self.spec.boundary
        if k == "none":
            return x
        if k == "lowpass":
            return lowpass(x, p[0], boundary=b)
        if k == "highpass":
            return highpass(x, p[0], boundary=b)
        if k == "bandpass":
            return bandpass(x, p[0], p[1], boundary=b)
        if k == "gaussian-lowpass":
            return gaussian_lowpass(x, p[0], boundary=b)
        if k == "gaussian-highpass":
            return gaussian_highpass(x, p[0], boundary=b)
        if k == "sobel":
            return sobel_edges(x)
        if k == "canny":
            return canny_edges(x, *p) if p else canny_edges(x)
        raise ValueError(f"unknown filter {k!r}")  # pragma: no cover

    def extra_repr(self) -> str:
        return str(self.spec)


# ----------------------------------------------------------------------------------------------- perturbations


def _check_unit_range(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{what} needs (N, 1|3, H, W) images, got shape {tuple(x.shape)}")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{what} needs images in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")


def jpeg_perturb(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress and decode each image with Pillow at ``quality`` (1-100); (N, 1|3, H, W) in [0, 1].

    The robustness perturbation of CNNDetection / UnivFD (they vary quality 30-100). Runs on the CPU.
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    _check_unit_range(x, "JPEG")
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    outs = []
    for img in arr:
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert("L" if img.shape[-1] == 1 else "RGB"))
        outs.append(dec.reshape(img.shape))
    out = torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).float() / 255.0
    return out.to(device=x.device, dtype=x.dtype)


def resize_perturb(x: torch.Tensor, scale: float, mode: str = "bilinear") -> torch.Tensor:
    """Resample to ``scale`` times the size (antialiased when shrinking) and back to the original size."""
    if not 0 < scale <= 4:
        raise ValueError(f"resize scale must be in (0, 4], got {scale}")
    if x.ndim != 4:
        raise ValueError(f"resize needs (N, C, H, W), got shape {tuple(x.shape)}")
    if scale == 1:
        return x
    h, w = x.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(x.float(), size=size, mode=mode, antialias=scale < 1, align_corners=False)
    return F.interpolate(small, size=(h, w), mode=mode, antialias=False, align_corners=False).to(x.dtype)


def blur_perturb(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with a pixel-space ``sigma`` (reflect border), CNNDetection's blur augmentation."""
    if sigma < 0:
        raise ValueError(f"blur sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x
    k = 2 * math.ceil(3 * sigma) + 1
    h, w = x.shape[-2:]
    k = max(3, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
    return kornia.filters.gaussian_blur2d(x.float(), (k, k), (sigma, sigma), border_type="reflect").to(
        x.dtype
    )


def parse_perturbation(spec: str | None):
    """``jpeg:Q | resize:SCALE | blur:SIGMA | none`` -> a function of a batch (or None for none)."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    name, _, arg = spec.strip().lower().partition(":")
    try:
        val = float(arg)
    except ValueError as exc:
        raise ValueError(f"perturbation {spec!r}: use jpeg:QUALITY, resize:SCALE or blur:SIGMA") from exc
    if name == "jpeg":
        if not 1 <= val <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {val:g}")
        return functools.partial(jpeg_perturb, quality=int(val))
    if name == "resize":
        if not 0 < val <= 4:
            raise ValueError(f"resize scale must be in (0, 4], got {val:g}")
        return functools.partial(resize_perturb, scale=val)
    if name == "blur":
        if val < 0:
            raise ValueError(f"blur sigma must be >= 0, got {val:g}")
        return functools.partial(blur_perturb, sigma=val)
    raise ValueError(f"unknown perturbation {spec!r}: use jpeg:QUALITY, resize:SCALE or blur:SIGMA")
