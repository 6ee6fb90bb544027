"""PoseCrafter: one-shot personalized video synthesis following flexible pose control.

Implements Zhong et al., "PoseCrafter: One-Shot Personalized Video Synthesis Following Flexible Pose Control"
(ECCV 2024, arXiv 2405.14582) on stock diffusers Stable Diffusion + ControlNet-OpenPose components, with the
key-frame and temporal attention and one-shot tuning of its precursor ControlVideo (thu-ml/controlvideo).
Everything is imported on first access, so ``import posecrafter`` (and ``posecrafter --help``) stays light.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    # poses and rendering (numpy/PIL)
    "Pose": "posecrafter.poses",
    "PoseFormatError": "posecrafter.poses",
    "read_pose_json": "posecrafter.poses",
    "read_pose_sequence": "posecrafter.poses",
    "write_pose_json": "posecrafter.poses",
    "render_pose": "posecrafter.render",
    "pose_images": "posecrafter.render",
    "synthetic_pose": "posecrafter.render",
    "synthetic_pose_sequence": "posecrafter.render",
    "synthetic_clip": "posecrafter.render",
    "blob_person": "posecrafter.render",
    "PoseDetector": "posecrafter.detect",
    # latent editing
    "fit_affine": "posecrafter.affine",
    "latent_affine": "posecrafter.affine",
    "warp_latent": "posecrafter.affine",
    "edit_latents": "posecrafter.affine",
    "vae_scale_factor": "posecrafter.affine",
    "AffineFitError": "posecrafter.affine",
    # attention, inversion, reference frame
    "inflate_unet": "posecrafter.attention",
    "inflate_controlnet": "posecrafter.attention",
    "select_trainable": "posecrafter.attention",
    "frame_kwargs": "posecrafter.attention",
    "PRECURSOR_TRAINABLE": "posecrafter.attention",
    "KeyFrameAttnProcessor": "posecrafter.attention",
    "KeyFrameTemporalAttnProcessor": "posecrafter.attention",
    "DDIMSchedule": "posecrafter.ddim",
    "ddim_invert": "posecrafter.ddim",
    "ddim_sample": "posecrafter.ddim",
    "select_reference_frame": "posecrafter.reference",
    "pose_distance": "posecrafter.reference",
    # pipeline and training
    "PoseCrafterPipeline": "posecrafter.pipeline",
    "GenerationConfig": "posecrafter.pipeline",
    "save_posecrafter_weights": "posecrafter.pipeline",
    "load_posecrafter_weights": "posecrafter.pipeline",
    "Components": "posecrafter.loading",
    "load_components": "posecrafter.loading",
    "tiny_components": "posecrafter.loading",
    "OneShotConfig": "posecrafter.training",
    "train_one_shot": "posecrafter.training",
    # metrics and I/O
    "l1": "posecrafter.metrics",
    "psnr": "posecrafter.metrics",
    "ssim": "posecrafter.metrics",
    "lpips": "posecrafter.metrics",
    "fid": "posecrafter.metrics",
    "fvd": "posecrafter.metrics",
    "read_video": "posecrafter.video_io",
    "write_gif": "posecrafter.video_io",
    "write_strip": "posecrafter.video_io",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
