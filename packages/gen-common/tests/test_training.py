import json

import pytest
import torch

from gen_common.training import EMA, TrainConfig, latest_checkpoint, lr_lambda, train

W = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))


def batch_fn(step, gen):
    x = torch.randn(32, 4, generator=gen)
    return x, x @ W


def loss_fn(model, batch, gen):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


CFG = TrainConfig(steps=30, lr=1e-2, ema_decay=0.9, schedule="cosine", warmup_steps=4, log_every=10)


def test_loss_decreases_and_history_logged():
    res = train(make_model(), loss_fn, batch_fn, TrainConfig(steps=30, lr=3e-2, log_every=10), progress=False)
    assert [h["step"] for h in res.history] == [10, 20, 30]
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]


def test_resume_is_exact(tmp_path):
    straight = make_model()
    train(straight, loss_fn, batch_fn, CFG, progress=False)
    resumed = make_model()
    first = train(resumed, loss_fn, batch_fn, CFG, out_dir=tmp_path, progress=False, stop_after=13)
    assert first.steps == 13 and latest_checkpoint(tmp_path).name == "step-00000013"
    again = make_model()  # a fresh process would start from scratch weights
    second = train(again, loss_fn, batch_fn, CFG, out_dir=tmp_path, progress=False)
    assert second.resumed_from == 13
    for a, b in zip(straight.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    state = json.loads((latest_checkpoint(tmp_path) / "trainer_state.json").read_text())
    assert state["step"] == 30 and len(state["history"]) == 3
    assert not list(tmp_path.glob(".step-*")), "no temporary checkpoint folder is left behind"


def test_lr_schedule_shape():
    f = lr_lambda(TrainConfig(steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)
    g = lr_lambda(TrainConfig(steps=100))
    assert g(0) == g(99) == 1.0


def test_ema_is_the_exponential_average():
    m = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, decay=0.5)
    for v in (1.0, 2.0):
        with torch.no_grad():
            m.weight.fill_(v)
        ema.update(m)
    # 0 -> 0.5*0 + 0.5*1 = 0.5 -> 0.5*0.5 + 0.5*2 = 1.25
    ema.copy_to(m)
    assert m.weight.item() == pytest.approx(1.25)


def test_non_finite_loss_stops_with_advice():
    def bad_loss(model, batch, gen):
        return loss_fn(model, batch, gen) * float("nan")

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train(make_model(), bad_loss, batch_fn, TrainConfig(steps=3), progress=False)


def test_bad_config():
    with pytest.raises(ValueError, match="--ema-decay must be less than 1"):
        TrainConfig(ema_decay=1.5)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_tampered_optimizer_state_is_a_one_line_checkpoint_error(tmp_path, capsys):
    from gen_common.checkpoint import CheckpointError

    cfg = TrainConfig(steps=6, lr=1e-2)
    train(make_model(), loss_fn, batch_fn, cfg, out_dir=tmp_path, progress=False, stop_after=3)
    opt = latest_checkpoint(tmp_path) / "optimizer.pt"
    torch.save({"optimizer": _Evil()}, opt)  # a pickle that would call print() if loaded unsafely
    with pytest.raises(CheckpointError) as info:
        train(make_model(), loss_fn, batch_fn, cfg, out_dir=tmp_path, progress=False)
    msg = str(info.value)
    assert "\n" not in msg and str(opt) in msg and "weights_only" in msg
    assert "this must never run" not in capsys.readouterr().out
    opt.write_bytes(b"\x80\x02garbage")  # truncated
    with pytest.raises(CheckpointError, match=r"optimizer\.pt is not a loadable optimizer state"):
        train(make_model(), loss_fn, batch_fn, cfg, out_dir=tmp_path, progress=False)


def test_show_progress_is_a_deprecated_alias():
    res = train(make_model(), loss_fn, batch_fn, TrainConfig(steps=2), show_progress=False)
    assert res.steps == 2


def test_two_trainings_in_one_process_with_different_precision():
    """accelerate's process-wide state refuses a second precision (stage 1 in bf16, then stage 2 in fp32, in one
    notebook); the loop resets it, and each run trains in the precision it asked for."""
    pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState

    seen = []

    def loss(model, x, g):
        seen.append(AcceleratorState().mixed_precision)
        return model(x).pow(2).mean()

    model = torch.nn.Linear(3, 1)
    for mp in ("bf16", "no", "bf16"):
        train(model, loss, lambda step, g: torch.randn(4, 3, generator=g),
              TrainConfig(steps=1, mixed_precision=mp), device="cpu", progress=False)  # fmt: skip
    assert seen == ["bf16", "no", "bf16"]
