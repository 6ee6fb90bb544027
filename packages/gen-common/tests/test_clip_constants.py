import pytest

from gen_common.metrics import CLIP_MEAN, CLIP_STD


def test_clip_mean_std_are_clips_own():
    transformers = pytest.importorskip("transformers")
    open_clip = pytest.importorskip("open_clip")
    proc = transformers.CLIPImageProcessor()
    assert tuple(proc.image_mean) == CLIP_MEAN == tuple(open_clip.OPENAI_DATASET_MEAN)
    assert tuple(proc.image_std) == CLIP_STD == tuple(open_clip.OPENAI_DATASET_STD)
