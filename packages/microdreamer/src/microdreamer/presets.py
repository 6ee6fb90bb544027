"""Presets matching the released configs (configs/image_sai.yaml, imagedream.yaml, text_mv.yaml + main.py).

| preset | denoiser | N (DDIM) | outer iters | t2 | CFG | η | views | I / init | ref terms |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| sai | Stable-Zero123 | 20 | 21 (K = 20) | 0.9T→0.2T | 3.0 | 0.5 | 6 | 15 / 15 | L1·0.3 + mask MSE·0.01 |
| imagedream | ImageDream | 10 | 31 | 0.8T→0.4T | 2.0 | 1.0 | 4 | 15 / 50 | none |
| mvdream | MVDream | 50 | 31 | 0.8T→0.5T | 7.5 | 0.0 | 4 | 15 / 50 | none |
| toy | analytic | 10 | 11 | 0.9T→0.2T | 3.0 | 0.5 | 4 | 15 / 15 | none (CPU toy, 32 px) |

ImageDream: the yaml's ``eta: 0.0`` is never passed to the guidance, whose default η = 1 is what the release runs
and what the paper states; ``imagedream-eta0`` offers the yaml's value. MVDream: η = 0 is hard-coded in the release and
text_mv.yaml lacks t_start/t_end/cfg/steps fields; the values above are the paper's (Table 5 / Sec. 4), with N = 50 and
31 outer iterations from the yaml. t1 = 0.6·t2 on the grid for every preset (the code's rule, MVDream included).

``<name>-official`` (and ``official`` = ``sai-official``) reproduce the release's quirks: the step counter advances
once more per outer iteration (it drives the position-lr decay and the densification schedule), densification
statistics come from the last rendered view only, and the DDIM inversion runs (and is counted as) the CFG-doubled batch
although it uses only the unconditional half. The default presets count each step once, use every view's
statistics and run the inversion on the unconditional batch alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["PRESETS", "RELEASE_NEGATIVE_PROMPT", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # which denoiser family fits ("zero123", "imagedream", "mvdream", "analytic")
    denoise_steps: int
    total_steps: int  # outer iterations including the initial one from pure noise
    t_start: float
    t_end: float
    inner_steps: int
    init_steps: int
    cfg: float
    eta: float
    views: int
    min_ver: int
    max_ver: int
    radius: float
    inverse_ratio: float = 0.6
    elevation: float = 0.0
    fovy: float = 49.1
    render_size: int = 256
    ref_size: int = 256
    ref_loss: float = 0.0
    ref_mask_loss: float = 0.0
    num_pts: int = 5000
    official: bool = False


# the release's schedule: N = denoise_steps DDIM steps, t2 from t_start·T to t_end·T; I = inner_steps per target
# round, init_steps on the first targets; views at elevations in [min_ver, max_ver] degrees, camera radius
PRESETS: dict[str, Preset] = {
    "sai": Preset(
        "sai", "zero123", denoise_steps=20, total_steps=21, t_start=0.9, t_end=0.2, inner_steps=15, init_steps=15,
        cfg=3.0, eta=0.5, views=6, min_ver=-30, max_ver=30, radius=2.0, ref_loss=0.3, ref_mask_loss=0.01,
    ),
    "imagedream": Preset(
        "imagedream", "imagedream", denoise_steps=10, total_steps=31, t_start=0.8, t_end=0.4, inner_steps=15,
        init_steps=50, cfg=2.0, eta=1.0, views=4, min_ver=-5, max_ver=0, radius=2.5,
    ),
    "mvdream": Preset(
        "mvdream", "mvdream", denoise_steps=50, total_steps=31, t_start=0.8, t_end=0.5, inner_steps=15,
        init_steps=50, cfg=7.5, eta=0.0, views=4, min_ver=-10, max_ver=10, radius=2.5,
    ),
    "toy": Preset(
        "toy", "analytic", denoise_steps=10, total_steps=11, t_start=0.9, t_end=0.2, inner_steps=15, init_steps=15,
        cfg=3.0, eta=0.5, views=4, min_ver=-30, max_ver=30, radius=2.0, render_size=32, ref_size=32, num_pts=400,
    ),
}  # fmt: skip
PRESETS["imagedream-eta0"] = replace(PRESETS["imagedream"], name="imagedream-eta0", eta=0.0)
for _n in ("sai", "imagedream", "mvdream", "toy"):
    PRESETS[f"{_n}-official"] = replace(PRESETS[_n], name=f"{_n}-official", official=True)
PRESETS["official"] = replace(PRESETS["sai-official"], name="official")


def get_preset(name: str, **overrides) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]


# configs/imagedream.yaml and text_mv.yaml: the negative prompt both multi-view runs pass to the unconditional half
RELEASE_NEGATIVE_PROMPT = (
    "ugly, bad anatomy, blurry, pixelated obscure, unnatural colors, poor lighting, dull, and unclear, cropped, "
    "lowres, low quality, artifacts, duplicate, morbid, mutilated, poorly drawn face, deformed, dehydrated, "
    "bad proportions"
)
