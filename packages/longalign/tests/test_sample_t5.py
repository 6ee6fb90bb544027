"""`longalign sample --t5 DIR --adapter DIR`: LongSD's T5 branch from local folders, offline."""

from __future__ import annotations

import json

import numpy as np
import torch
from longalign.cli import main
from PIL import Image


def tiny_t5_folder(path, seed=0):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "a", "red", "house", "blue", "door", "cat", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(path)
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(words), d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=1)
    T5EncoderModel(cfg).save_pretrained(path)
    return path


def adapter_folder(path, out_dim, seed=0):
    from longalign.t5branch import TextAdapter

    torch.manual_seed(seed)
    TextAdapter(16, 24, out_dim).save_pretrained(path)
    return path


def test_sample_with_the_t5_branch(capsys, tmp_path, sd_pipe):
    t5 = tiny_t5_folder(tmp_path / "t5")
    width = sd_pipe.unet.config.cross_attention_dim
    adapter = adapter_folder(tmp_path / "adapter", width)
    prompts = tmp_path / "p.txt"
    prompts.write_text("A red house. A blue door.\n")
    base = ["sample", "--prompts", str(prompts), "--steps", "2", "--scheduler", "ddim", "--max-length", "20"]
    assert main([*base, "--out", str(tmp_path / "plain"), "--json"]) == 0
    code = main(
        [*base, "--t5", str(t5), "--adapter", str(adapter), "--out", str(tmp_path / "t5run"), "--json"]
    )
    assert code == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with_t5 = np.asarray(Image.open(rep["files"][0]), dtype=np.float32)
    plain = np.asarray(Image.open(tmp_path / "plain" / "images" / "sample-000.png"), dtype=np.float32)
    assert np.abs(with_t5 - plain).mean() > 0.5  # the 20 adapter rows reach the UNet

    # the same image as the library route: SegmentEncoder branch built by hand from the same folders
    from diffusers import DDIMScheduler
    from longalign.loading import load_t5_branch
    from longalign.pipeline import LongPromptPipeline
    from longalign.toys import tiny_sd_pipeline

    pipe = tiny_sd_pipeline(seed=0)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    branch = load_t5_branch(str(t5), str(adapter), pipe, "cpu", max_length=20)
    lp = LongPromptPipeline.from_pipe(pipe, max_length=20, branch=branch)
    pe, _ = lp.encode("A red house. A blue door.")
    assert pe.shape == (1, 40, width)
    img = lp("A red house. A blue door.", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(np.asarray(img.images[0], dtype=np.float32), with_t5)


def test_t5_branch_user_errors_exit_2(capsys, tmp_path, sd_pipe):
    t5 = tiny_t5_folder(tmp_path / "t5")
    bad = adapter_folder(tmp_path / "adapter", sd_pipe.unet.config.cross_attention_dim + 1)
    argv = ["sample", "--prompt", "A cat.", "--steps", "1", "--out", str(tmp_path / "o")]
    assert main([*argv, "--t5", str(t5), "--adapter", str(bad)]) == 2
    assert "the UNet attends to" in capsys.readouterr().err
    assert main([*argv, "--t5", str(t5)]) == 2
    assert "both --t5 and --adapter" in capsys.readouterr().err
    assert main([*argv, "--t5", str(tmp_path), "--adapter", str(bad)]) == 2
    assert "not a T5 encoder folder" in capsys.readouterr().err
