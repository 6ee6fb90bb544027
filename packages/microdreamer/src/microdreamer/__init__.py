"""MicroDreamer: 3D generation by score-based iterative reconstruction (SIR), Chen et al.

Names are imported lazily (PEP 562) so that the console script's ``--help`` never imports torch.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Cameras": "cameras",
    "orbit_cameras": "cameras",
    "RenderOutput": "rasterizer",
    "rasterize_gaussians": "rasterizer",
    "GaussianModel": "gaussians",
    "GaussianTrainConfig": "gaussians",
    "DDIMGrid": "ddim",
    "t1_for": "schedules",
    "t2_for": "schedules",
    "t2_schedule": "schedules",
    "Denoiser": "denoisers",
    "CallCounter": "denoisers",
    "AnalyticDenoiser": "denoisers",
    "Preset": "presets",
    "PRESETS": "presets",
    "get_preset": "presets",
    "Reference": "loop",
    "History": "loop",
    "sample_views": "loop",
    "run_sir": "sir",
    "sir_targets": "sir",
    "run_sds": "sds",
    "Checkpointer": "checkpoints",
    "toy_scene": "toy",
    "toy_denoiser": "toy",
    "HeldOut": "toy",
    "Mesh": "mesh",
    "extract_mesh": "mesh",
    "save_mesh": "mesh",
    "decimate_mesh": "decimate",
    "render_mesh": "mesh_render",
    "rasterize_mesh": "mesh_render",
    "RefineConfig": "refine",
    "refine_mesh_colors": "refine",
    "mesh_heldout_error": "refine",
    "VoxelNeRF": "nerf",
    "filter_white_gaussians": "postprocess",
    "load_image": "images",
    "Zero123Denoiser": "zero123",
    "tiny_zero123": "zero123",
    "MultiViewDenoiser": "multiview",
    "mvdream_camera": "multiview",
    "tiny_multiview": "multiview",
    "MultiViewUNet": "mvunet",
    "clip_similarity": "evaluation",
    "orbit_frames": "plots",
    "save_gif": "plots",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
