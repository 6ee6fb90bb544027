"""Stage 1 with LongSD's T5 branch: LoRA + adapter trained together (T5 and CLIP frozen), saved, resumed, reloaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from longalign import SegmentEncoder
from longalign.cli import main
from longalign.loading import load_t5_branch
from longalign.lora import LoraSpec, add_lora
from longalign.toys import tiny_sd_pipeline
from longalign.training import AlignObjective, train_align
from PIL import Image

from gen_common.training import TrainConfig

from .test_sample_t5 import adapter_folder, tiny_t5_folder

CAPTIONS = ["A red house. A blue door.", "A cat. A red door.", "A blue house.", "A cat. A house."]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    return tiny_t5_folder(tmp_path_factory.mktemp("t5"))


def _images(n=4, side=16):
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(0))


def _branch(t5_dir, pipe, adapter=None):
    return load_t5_branch(str(t5_dir), adapter, pipe, "cpu", max_length=20, adapter_width=24, seed=0)


def test_only_lora_and_adapter_get_gradients(t5_dir):
    pipe = tiny_sd_pipeline(seed=0)
    branch = _branch(t5_dir, pipe)
    add_lora(pipe.unet, LoraSpec(rank=4), seed=0)
    obj = AlignObjective(pipe, SegmentEncoder.from_pipe(pipe, max_length=20), 0.0, branch)
    obj.train()
    g = torch.Generator().manual_seed(0)
    batch = {
        "images": _images(2),
        "captions": CAPTIONS[:2],
        "noise": torch.randn(2, 4, 8, 8, generator=g),
        "t": torch.tensor([100, 700]),
    }
    obj.eval()  # (the adapter's dropout off: the context is then a function of the captions)
    ctx = obj.context(CAPTIONS[:2])
    assert ctx.shape == (2, 40, pipe.unet.config.cross_attention_dim)
    torch.testing.assert_close(
        ctx[:, :20], obj.encoder(CAPTIONS[:2]).embeds, atol=0, rtol=0
    )  # CLIP rows first
    torch.testing.assert_close(ctx[:, 20:], branch(CAPTIONS[:2]), atol=0, rtol=0)  # then the adapter's
    obj.train()
    obj(batch).backward()
    for owner, module in (("t5", branch.encoder), ("clip", pipe.text_encoder), ("vae", pipe.vae)):
        for n, p in module.named_parameters():
            assert not p.requires_grad and p.grad is None, (owner, n)
    graded = {n for n, p in obj.named_parameters() if p.grad is not None}
    trainable = {n for n, p in obj.named_parameters() if p.requires_grad}
    assert graded == trainable
    assert all("lora_" in n or n.startswith("adapter.") for n in graded)
    adapter = {n for n in graded if n.startswith("adapter.")}
    assert adapter == {f"adapter.{k}" for k in branch.adapter.state_dict()}  # every adapter weight trains
    for n, p in obj.named_parameters():
        if n in adapter or "lora_B" in n:  # (lora_A's gradient is 0 while up = 0, as in the release)
            assert float(p.grad.abs().max()) > 0, n


def test_caption_dropout_reaches_both_branches_and_only_lora_adapter_move(t5_dir):
    pipe = tiny_sd_pipeline(seed=0)
    branch = _branch(t5_dir, pipe)
    seen_t5: list[list[str]] = []
    seen_clip: list[list[str]] = []
    t5_states = branch.t5_states
    branch.t5_states = lambda prompts: (seen_t5.append(list(prompts)), t5_states(prompts))[1]

    class Recording(SegmentEncoder):
        def __call__(self, prompts):
            seen_clip.append(list(prompts))
            return super().__call__(prompts)

    frozen = {
        f"{m}.{n}": p.detach().clone()
        for m, mod in (("t5", branch.encoder), ("clip", pipe.text_encoder), ("unet", pipe.unet))
        for n, p in mod.named_parameters()
    }
    adapter0 = {k: v.clone() for k, v in branch.adapter.state_dict().items()}
    _, res = train_align(
        pipe,
        _images(),
        CAPTIONS,
        batch_size=4,
        caption_dropout=0.5,
        lora=LoraSpec(rank=4),
        config=TrainConfig(steps=2, lr=1e-3, log_every=1, seed=0),
        encoder=Recording(pipe.tokenizer, pipe.text_encoder, max_length=20),
        branch=branch,
        device="cpu",
        progress=False,
    )
    assert len(res.history) == 2
    assert (
        len(seen_t5) == 2 and seen_clip == seen_t5
    )  # each step: the same (dropped) captions in both branches
    flat = [c for b in seen_t5 for c in b]
    assert "" in flat and any(c in CAPTIONS for c in flat)  # dropped captions reach T5 as "" too
    for m, mod in (("t5", branch.encoder), ("clip", pipe.text_encoder)):
        for n, p in mod.named_parameters():
            assert torch.equal(p.detach(), frozen[f"{m}.{n}"]), n
    for n, p in pipe.unet.named_parameters():
        if "lora_" not in n:
            assert torch.equal(p.detach(), frozen[f"unet.{n.replace('.base_layer', '')}"]), n
    moved = [k for k, v in branch.adapter.state_dict().items() if not torch.equal(v, adapter0[k])]
    assert len(moved) == len(adapter0)
    assert not branch.adapter.training  # back in eval mode after training (its dropout off for sampling)


def test_resume_with_adapter_is_bit_identical(t5_dir, tmp_path):
    def run(out, stop_after=None):
        torch.manual_seed(0)  # LoRA and adapter dropout draw from the global RNG, which checkpoints restore
        pipe = tiny_sd_pipeline(seed=0)
        return train_align(
            pipe,
            _images(),
            CAPTIONS,
            batch_size=2,
            caption_dropout=0.5,
            lora=LoraSpec(rank=4),
            config=TrainConfig(steps=2, lr=1e-3, weight_decay=1e-2, grad_clip=0.3, log_every=1, seed=0),
            branch=_branch(t5_dir, pipe),
            out_dir=out,
            device="cpu",
            progress=False,
            stop_after=stop_after,
        )

    obj, _ = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=1)
    obj_b, res_b = run(tmp_path / "b")
    assert res_b.resumed_from == 1
    state = obj.state_dict()
    assert any(k.startswith("adapter.") for k in state) and any("lora_" in k for k in state)
    for k, v in state.items():
        torch.testing.assert_close(obj_b.state_dict()[k], v, atol=0, rtol=0)
    # the optimizer moments of the adapter are checkpointed and restored too
    opt = [torch.load(tmp_path / d / "step-00000002" / "optimizer.pt", weights_only=True) for d in "ab"]
    n_params = len(state)
    assert len(opt[0]["optimizer"]["state"]) == n_params
    for i, s in opt[0]["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(s[name], opt[1]["optimizer"]["state"][i][name])


def _data(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, cap in enumerate(CAPTIONS[:2]):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(cap)
    return folder


def test_train_align_adapter_reloads_in_sample(capsys, t5_dir, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "align"
    argv = ["train-align", str(_data(tmp_path / "data")), "--steps", "2", "--rank", "4", "--batch-size", "2"]
    t5 = ["--t5", str(t5_dir), "--max-length", "20"]
    code = main([*argv, *t5, "--adapter-width", "24", "--lr", "1e-2", "--out", str(out), "--json"])
    assert code == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = load_file(out / "adapter" / "diffusion_pytorch_model.safetensors")
    assert json.loads((out / "adapter" / "config.json").read_text())["int_dim"] == 24
    # the release's parameter names (its save_pretrained layout), each equal to the trained (checkpointed) tensor
    trained = load_file(out / "checkpoints" / "step-00000002" / "model.safetensors")
    assert set(saved) == {k[len("adapter.") :] for k in trained if k.startswith("adapter.")}
    assert {"norm1.weight", "ff1.net.0.proj.weight", "ff1.net.2.weight", "ff2.net.2.bias"} <= set(saved)
    for k, v in saved.items():
        assert torch.equal(v, trained[f"adapter.{k}"]), k
    assert rep["adapter"] == str(out / "adapter")

    prompt = tmp_path / "p.txt"
    prompt.write_text("A red house. A blue door.\n")
    base = ["sample", "--prompts", str(prompt), "--steps", "2", "--scheduler", "ddim", *t5]
    lora = ["--lora", str(out / "lora")]
    for name, extra in (("fresh", []), ("trained", ["--adapter", str(out / "adapter")])):
        if name == "fresh":  # the untrained adapter: same seed, same width
            from longalign.t5branch import save_adapter

            pipe = tiny_sd_pipeline(seed=0)
            save_adapter(_branch(t5_dir, pipe).adapter, tmp_path / "fresh_adapter")
            extra = ["--adapter", str(tmp_path / "fresh_adapter")]
        assert main([*base, *lora, *extra, "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    img = {
        n: np.asarray(Image.open(tmp_path / n / "images" / "sample-000.png"), dtype=np.float32)
        for n in ("fresh", "trained")
    }
    assert np.abs(img["trained"] - img["fresh"]).mean() > 0.1  # the trained adapter changes the image

    # the same image from the trained tensors in memory (the final checkpoint: unfused LoRA + adapter)
    from diffusers import DDIMScheduler
    from longalign.pipeline import LongPromptPipeline

    pipe = tiny_sd_pipeline(seed=0)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    branch = _branch(t5_dir, pipe)
    add_lora(pipe.unet, LoraSpec(rank=4), seed=0)
    obj = AlignObjective(pipe, SegmentEncoder.from_pipe(pipe, max_length=20), 0.1, branch)
    obj.load_state_dict(trained)
    obj.eval()
    reloaded = load_t5_branch(str(t5_dir), str(out / "adapter"), pipe, "cpu", max_length=20)
    torch.testing.assert_close(reloaded(["A red house."]), branch(["A red house."]), atol=0, rtol=0)
    lp = LongPromptPipeline.from_pipe(pipe, max_length=20, branch=branch)
    mem = lp("A red house. A blue door.", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(np.asarray(mem.images[0], dtype=np.float32), img["trained"])


def _error_line(capsys):
    """The one error line (transformers' own weight-loading bar may precede it on stderr)."""
    lines = [x for x in capsys.readouterr().err.strip().splitlines() if "error:" in x]
    assert len(lines) == 1
    return lines[0]


def test_train_align_bad_adapter_exit_2(capsys, t5_dir, tmp_path, sd_pipe):
    data = _data(tmp_path / "data")
    argv = ["train-align", str(data), "--steps", "1", "--rank", "4", "--out", str(tmp_path / "o")]
    wide = adapter_folder(tmp_path / "wide", sd_pipe.unet.config.cross_attention_dim + 1)
    assert main([*argv, "--t5", str(t5_dir), "--adapter", str(wide)]) == 2
    err = _error_line(capsys)
    assert "the UNet attends to" in err
    # weights whose shapes do not fit the adapter's own config.json
    bad = adapter_folder(tmp_path / "bad", sd_pipe.unet.config.cross_attention_dim)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "int_dim": 30}))
    assert main([*argv, "--t5", str(t5_dir), "--adapter", str(bad)]) == 2
    err = _error_line(capsys)
    assert "7 shape mismatch(es)" in err and "ff1.net.2.weight: checkpoint (24, 64) vs model (30, 64)" in err
    # an adapter folder without weights
    (bad / "diffusion_pytorch_model.safetensors").unlink()
    assert main([*argv, "--t5", str(t5_dir), "--adapter", str(bad)]) == 2
    assert "has no diffusion_pytorch_model.safetensors" in _error_line(capsys)
    assert main([*argv, "--adapter", str(bad)]) == 2
    assert "--adapter needs --t5" in capsys.readouterr().err
    assert not (tmp_path / "o" / "lora").exists()
    # a checkpoint trained without the adapter is not resumed with one
    assert main(argv) == 0
    assert main([*argv, "--overwrite", "--t5", str(t5_dir), "--adapter-width", "24"]) == 2
    assert "trained without the T5 adapter" in _error_line(capsys)


@pytest.mark.parametrize("command", ["train-align", "train-reward"])
def test_warmup_steps_reach_the_training_loop(monkeypatch, tmp_path, command):
    """`--warmup-steps` (the release warms up over 2000 optimizer steps) is the TrainConfig the loop gets."""
    import longalign.training as training

    seen = {}

    def fake(*args, **kwargs):
        seen["config"] = next(a for a in (*args, *kwargs.values()) if isinstance(a, training.TrainConfig))
        raise SystemExit(0)

    monkeypatch.setattr(training, "train_align" if command == "train-align" else "train_reward", fake)
    if command == "train-align":
        argv = [command, str(_data(tmp_path / "data"))]
    else:
        (tmp_path / "p.txt").write_text("A red house. A blue door.\n")
        argv = [command, str(tmp_path / "p.txt")]
    with pytest.raises(SystemExit):
        main([*argv, "--steps", "7", "--warmup-steps", "3", "--out", str(tmp_path / "o")])
    assert (seen["config"].warmup_steps, seen["config"].steps) == (3, 7)


def test_train_reward_with_the_stage1_adapter_keeps_it_frozen(monkeypatch, capsys, t5_dir, tmp_path, sd_pipe):
    """Stage 2 of LongSD: the UNet sees CLIP rows + the (frozen) adapter's rows; only the fresh LoRA trains."""
    import longalign.training as training
    from safetensors.torch import load_file

    width = sd_pipe.unet.config.cross_attention_dim
    adapter = adapter_folder(tmp_path / "adapter", width)
    seen = {}
    real = training.train_reward

    def recording(pipe, prompts, preference, **kw):
        seen["encoder"] = kw["encoder"]
        return real(pipe, prompts, preference, **kw)

    monkeypatch.setattr(training, "train_reward", recording)
    (tmp_path / "p.txt").write_text("A red house. A blue door.\nA cat.\n")
    out = tmp_path / "r"
    argv = ["train-reward", str(tmp_path / "p.txt"), "--steps", "1", "--stride", "250", "--grad-every", "2"]
    argv += ["--rank", "4", "--batch-size", "2", "--max-length", "20", "--t5", str(t5_dir)]
    assert main([*argv, "--adapter", str(adapter), "--out", str(out), "--json"]) == 0
    enc = seen["encoder"]
    embeds = enc(["A red house."]).embeds
    assert embeds.shape[1] == 40  # 20 CLIP rows + 20 adapter rows, as stage 1 trained the UNet to read
    ref = load_file(adapter / "diffusion_pytorch_model.safetensors")
    for k, v in enc.branch.adapter.state_dict().items():
        assert torch.equal(v, ref[k]), k  # the adapter did not move
    assert not any(p.requires_grad for p in enc.branch.adapter.parameters())
    trained = load_file(out / "checkpoints" / "step-00000001" / "model.safetensors")
    assert trained and all("lora_" in k for k in trained)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "r2")]) == 2
    assert "needs both --t5 and --adapter" in capsys.readouterr().err
