"""Loading real pipeline folders (diffusers layout) and the offline error for hub ids."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from i2v_leak.loading import LoadOptions, load_pipeline

from gen_common.checkpoint import CheckpointNotFoundError, OfflineError
from gen_common.testing import assert_close


def test_saved_svd_folder_loads_and_matches(svd_pipe, image, tmp_path):
    svd_pipe.save_pretrained(tmp_path / "svd")
    pipe = load_pipeline("svd", str(tmp_path / "svd"), "cpu")
    kw = dict(height=32, width=32, num_frames=2, num_inference_steps=2, output_type="pt")
    a = pipe(image, generator=torch.Generator().manual_seed(0), **kw).frames
    b = svd_pipe(image, generator=torch.Generator().manual_seed(0), **kw).frames
    # equal up to float rounding (the reloaded modules may pick other attention kernels)
    assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(OfflineError, match="model_index"):
        load_pipeline("i2vgenxl", str(tmp_path / "svd"), "cpu")


def test_missing_folder_and_offline_hub_id(tmp_path):
    with pytest.raises(CheckpointNotFoundError):
        load_pipeline("svd", str(tmp_path / "nothing"), "cpu")
    with pytest.raises(OfflineError, match="offline"):
        load_pipeline("svd", "stabilityai/stable-video-diffusion-img2vid", "cpu")
    with pytest.raises(ValueError, match="unknown pipeline"):
        load_pipeline("sora", "tiny", "cpu")
    with pytest.raises(ValueError, match="CUDA"):
        load_pipeline("svd", "tiny", "cpu", LoadOptions(cpu_offload=True))
