from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from longalign.cli import main


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    return code, json.loads(out)


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom longalign.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_encode_reports_rows(capsys, tmp_path):
    prompt = " ".join(f"Sentence number {i} is about a red house." for i in range(12))
    code, rep = run_json(capsys, "encode", "--prompt", prompt, "--out", str(tmp_path))
    assert code == 0 and rep["segments"] == [12]
    assert rep["plain_clip_tokens_dropped"][0] > 0 and rep["rows_cut"] == [0]
    assert rep["rows"][0] == rep["prompt_tokens"][0] - 2 + 12  # every segment adds its <sot>; <eot> dropped
    assert (tmp_path / "embeds.safetensors").is_file()


def test_user_errors_exit_2(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert main(["encode", "--prompts", str(empty)]) == 2
    assert "holds no prompts" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    torch.save([torch.zeros(3, 3), torch.zeros(3, 3)], bad)
    assert main(["convert", str(bad)]) == 2
    assert "up/down pairs" in capsys.readouterr().err
    folder = tmp_path / "pref"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"text_config": {}}))
    prompts = tmp_path / "p.txt"
    prompts.write_text("A cat.\n")
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    assert main(["score", str(tmp_path / "a.png"), str(prompts), "--preference", str(folder)]) == 2
    assert "text or a vision tower" in capsys.readouterr().err
    assert main(["sample", "--model", "someone/not-here", "--prompt", "x"]) == 2
    assert "offline" in capsys.readouterr().err


def test_sample_then_score(capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A red house. A blue door.\nTwo cats on a sofa. One is black.\n")
    out = tmp_path / "samples"
    code, rep = run_json(
        capsys, "sample", "--prompts", str(prompts), "--steps", "2", "--scheduler", "ddim", "--out", str(out)
    )
    assert code == 0 and rep["images"] == 2 and (out / "contact_sheet.png").is_file()
    code, sc = run_json(
        capsys, "score", str(out / "images"), str(prompts), "--weight", "1.0", "--out", str(tmp_path / "s")
    )
    assert code == 0 and sc["images"] == 2
    for row in sc["per_image"]:
        assert row["score"] == pytest.approx(row["relevant"] + row["irrelevant"], abs=1e-5)
    # the output-folder policy: a second run refuses to replace the images
    assert main(["sample", "--prompts", str(prompts), "--steps", "2", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:batch of 1")
def test_train_reward_writes_a_reloadable_lora(capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A red house. A blue door.\n")
    out = tmp_path / "run"
    argv = [
        "train-reward",
        str(prompts),
        "--steps",
        "1",
        "--stride",
        "250",
        "--grad-every",
        "2",
        "--rank",
        "4",
        "--batch-size",
        "2",
    ]
    code, rep = run_json(capsys, *argv, "--lr", "1e-3", "--out", str(out))
    assert code == 0 and rep["steps"] == 1
    from longalign.lora import load_lora
    from longalign.toys import tiny_sd_pipeline

    pipe = load_lora(tiny_sd_pipeline(0), out / "lora")
    assert sum("lora_" in n for n, _ in pipe.unet.named_parameters()) > 0


def test_bench_encoding_and_the_sd15_text_encoder_size(capsys):
    from longalign.bench import sd15_text_config
    from transformers import CLIPTextModel

    code, rep = run_json(capsys, "bench", "--no-reward", "--sentences", "3", "--repeats", "1")
    e = rep["encoding"]
    assert code == 0 and e["segments"] == 3 and e["per_segment_s"] > 0 and e["batched_s"] > 0
    with torch.device("meta"):  # shapes only: SD 1.5's CLIP-L text tower without allocating its weights
        big = CLIPTextModel(sd15_text_config())
    assert sum(p.numel() for p in big.parameters()) == 123_060_480  # stable-diffusion-v1-5/text_encoder


def test_bench_encoding_in_bf16_checks_rows_at_bf16_precision(monkeypatch):
    """`bench` on CUDA runs the pipeline in bf16: the parity check must allow bf16 rounding, yet still catch wrong rows."""
    from longalign import bench as bench_mod
    from longalign.toys import tiny_sd_pipeline

    pipe = tiny_sd_pipeline(seed=0)
    pipe.text_encoder.to(torch.bfloat16)
    rep = bench_mod.bench_encoding(pipe, sentences=10, repeats=1)
    assert rep["segments"] == 10
    real = bench_mod.per_segment_encode
    monkeypatch.setattr(bench_mod, "per_segment_encode", lambda enc, p: real(enc, p).roll(1, dims=0))
    with pytest.raises(AssertionError):
        bench_mod.bench_encoding(pipe, sentences=10, repeats=1)


@pytest.mark.filterwarnings("ignore:batch of 1")  # two prompts, batch 2: a step may draw one twice
def test_resuming_with_other_settings_is_one_line_exit_2(capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("A red house. A blue door.\nA cat.\n")
    argv = ["train-reward", str(prompts), "--stride", "250", "--grad-every", "2", "--batch-size", "2"]
    argv += ["--out", str(tmp_path / "run")]
    assert main([*argv, "--steps", "1", "--rank", "4"]) == 0
    capsys.readouterr()
    for other, named in (
        (["--rank", "8"], "lora.rank 4 -> 8"),
        (["--sampler", "lcm"], "reward.sampler 'ddim'"),
    ):
        assert main([*argv, "--steps", "2", "--rank", "4", *other, "--overwrite"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0] and "fresh --out" in err[0], err
    # the checkpoint's own settings resume (and --steps may grow)
    assert main([*argv, "--steps", "2", "--rank", "4", "--overwrite"]) == 0


def test_load_trainable_refuses_another_shape_in_one_line():
    from longalign.reward import load_trainable

    m = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"1 of another shape.*--rank") as e:
        load_trainable(m, {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, True, "same --rank")
    assert "\n" not in str(e.value)
    load_trainable(m, {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, True, "")
    assert torch.equal(m.weight.detach(), torch.ones(2, 3))
