"""Full-batch gradient descent on the AR loss, exactly as the paper's experiments (Appendix B), until converged.

Each epoch is one step W ← W − η g_W on all m training sequences (the official code's SGD over the whole set),
with analytic gradients over the cached prefix Grams. By default the learning rate is `automatic_lr`: half the
stability limit 2/λ_max, where λ_max combines the theory's bound for the diagonal dynamics (`theory.stable_lr`,
∝ 1/(T m₆)) with the measured top Hessian eigenvalue at the start and at the predicted fixed point. Training
stops when ab changes by less than ``tol``·|ab| for ``patience`` consecutive epochs (or at ``max_epochs``).
Optional masks reproduce the paper's masked-gradient experiment (the all-ones runs with the off-diagonal
gradients of the two mesa blocks zeroed, official flag ``--clip``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gen_common.cli import progress as progress_bar
from icl_dynamics.config import GRAD_MASKS, GDConfig
from icl_dynamics.model import LinearSelfAttention, LSAConfig, active_masks, check_sequences
from icl_dynamics.objective import ARProblem, hessian_top_eigenvalue, loss_and_grad
from icl_dynamics.prefix import embed, last_gram
from icl_dynamics.theory import empirical_moments, predict_theory, stable_lr

__all__ = [
    "GRAD_MASKS",
    "GDConfig",
    "TrainResult",
    "TrainingDivergedError",
    "automatic_lr",
    "evaluate_last",
    "train",
]


class TrainingDivergedError(ValueError):
    """Gradient descent blew up; the message names a smaller learning rate to try."""


@dataclass
class TrainResult:
    model: LinearSelfAttention
    lr: float
    epochs: int  # gradient steps taken
    converged: bool
    restarts: int
    seconds: float
    history: dict[str, list[Any]] = field(default_factory=dict)
    snapshots: list[tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @property
    def ab(self) -> float:
        return self.model.ab

    def summary(self) -> dict[str, Any]:
        h = self.history
        out: dict[str, Any] = {
            "ab": self.model.ab,
            "abs_a": self.model.a.abs().tolist(),
            "abs_b": self.model.b.abs().tolist(),
            "final_loss": h["loss"][-1],
            "max_offdiag": self.model.max_offdiag,
            "lr": self.lr,
            "epochs": self.epochs,
            "converged": self.converged,
            "restarts": self.restarts,
            "seconds": self.seconds,
        }
        if h.get("ratio"):
            out["ratio_last"] = h["ratio"][-1]
            out["mse_last"] = h["mse_last"][-1]
        return out


def evaluate_last(
    wpv: torch.Tensor, wkq: torch.Tensor, x: torch.Tensor, gram_last: torch.Tensor | None = None
) -> dict[str, float]:
    """Prediction of the last token x_T from x_1..x_{T−1}: mean Re(ŷ/x) over coordinates with x ≠ 0 (the
    official "ratio", which adds 1e-5 to x instead) and the MSE ½ Σ_j |ŷ_j − x_j|² averaged over sequences.

    The official code logs, for sparse x₁, the whole-sequence test loss under the label "MSE loss at T_te";
    we report the last-position MSE the label names (the training loss is in the history too)."""
    T = x.shape[1]
    e = embed(x)
    S = gram_last if gram_last is not None else last_gram(e, T - 1)
    q = e[:, T - 2] @ wkq.transpose(0, 1)
    pred = ((S @ q[..., None])[..., 0] @ wpv.transpose(0, 1)) / (T - 2)
    target = x[:, T - 1]
    nz = target.abs() > 1e-12
    ratio = float((pred[nz] / target[nz]).real.mean()) if bool(nz.any()) else float("nan")
    mse = 0.5 * float((pred - target).abs().square().sum()) / x.shape[0]
    return {"ratio": ratio, "mse_last": mse}


def automatic_lr(
    model: LinearSelfAttention, x: torch.Tensor, *, safety: float = 0.5, subset: int = 1000
) -> float:
    """``safety``·2/λ_max, with λ_max the largest of: the diagonal-dynamics bound of `theory.stable_lr`, and the
    top Hessian eigenvalue (power iteration on ≤ ``subset`` sequences) at the current parameters and at the
    predicted fixed point ab* on the hyperbola a² − b² = const that gradient flow conserves."""
    d, T = model.d, x.shape[1]
    mom = empirical_moments(x[:, 0])
    a0, b0 = float(model.a.abs().mean()), float(model.b.abs().mean())
    lam = 2.0 / stable_lr(mom, d, T, a0, b0, safety=0.5)
    sub = ARProblem(x[:subset])
    lam = max(lam, hessian_top_eigenvalue(model.wpv, model.wkq, sub))
    delta, cstar = a0 * a0 - b0 * b0, predict_theory(mom, d, T).predicted_ab
    if cstar > 0:
        s = math.sqrt(delta * delta + 4 * cstar * cstar)
        a_fix = math.sqrt((s + delta) / 2)
        fixed = LinearSelfAttention(LSAConfig(d, a_fix, cstar / a_fix, model.config.dtype)).to(
            model.wkq.device
        )
        lam = max(lam, hessian_top_eigenvalue(fixed.wpv, fixed.wkq, sub))
    return safety * 2.0 / lam


def _grad_masks(mode: str, d: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Boolean masks of the entries that receive gradient (None: all of them)."""
    if mode == "none":
        return None
    kq_diag, pv_diag = active_masks(d, device=device)
    if mode == "diagonal":
        return kq_diag, pv_diag
    # "offdiag": the paper's masked run zeroes the off-diagonal entries of the two mesa blocks
    # W^{KQ}[d:, :d] and W^{PV}[:, :d] (the official code zeroes them after each step; from the diagonal
    # initialisation this is the same as masking their gradients). Other blocks stay trainable.
    kq = torch.ones(2 * d, 2 * d, dtype=torch.bool, device=device)
    pv = torch.ones(d, 2 * d, dtype=torch.bool, device=device)
    kq[d:, :d] = kq_diag[d:, :d]
    pv[:, :d] = pv_diag[:, :d]
    return kq, pv


def train(
    model: LinearSelfAttention,
    x_train: torch.Tensor,
    *,
    config: GDConfig | None = None,
    x_test: torch.Tensor | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place by full-batch GD on ``x_train`` (m, T, d); returns trajectories and summary.

    ``x_test`` (m', T', d) is evaluated at its last position every ``eval_every`` epochs (ratio, MSE).
    """
    cfg = config or GDConfig()
    dev, dtype = model.wkq.device, model.wkq.dtype
    x = check_sequences(x_train, model.d).to(device=dev, dtype=dtype)
    problem = ARProblem(x, cfg.strategy, cache_bytes=cfg.cache_bytes)
    test = None
    if x_test is not None and cfg.eval_every > 0:
        xt = check_sequences(x_test, model.d).to(device=dev, dtype=dtype)
        test = (xt, last_gram(embed(xt), xt.shape[1] - 1))

    auto_lr = cfg.lr is None
    lr = automatic_lr(model, x, safety=cfg.lr_safety) if auto_lr else float(cfg.lr)
    masks = _grad_masks(cfg.grad_mask, model.d, dev)
    init = (model.wkq.detach().clone(), model.wpv.detach().clone())
    t0 = time.perf_counter()
    restarts = 0
    while True:
        try:
            history, snapshots, steps, converged = _descend(
                model, problem, test, lr, masks, cfg, progress, on_epoch
            )
            break
        except TrainingDivergedError:
            if not auto_lr or restarts >= cfg.max_restarts:
                raise
            restarts += 1
            lr /= 4
            with torch.no_grad():
                model.wkq.copy_(init[0])
                model.wpv.copy_(init[1])
    return TrainResult(
        model=model,
        lr=lr,
        epochs=steps,
        converged=converged,
        restarts=restarts,
        seconds=time.perf_counter() - t0,
        history=history,
        snapshots=snapshots,
    )


def _descend(
    model: LinearSelfAttention,
    problem: ARProblem,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    lr: float,
    masks: tuple[torch.Tensor, torch.Tensor] | None,
    cfg: GDConfig,
    progress: bool | None,
    on_epoch: Callable[[int, dict[str, float]], None] | None,
) -> tuple[dict[str, list[Any]], list[tuple[int, torch.Tensor, torch.Tensor]], int, bool]:
    hist: dict[str, list[Any]] = {k: [] for k in ("epoch", "loss", "ab", "max_offdiag", "abs_a", "abs_b")}
    hist.update({"test_epoch": [], "ratio": [], "mse_last": []})
    snapshots: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    wkq, wpv = model.wkq, model.wpv
    loss0 = None
    calm = 0
    converged = False
    bar = progress_bar(total=cfg.max_epochs, desc="GD epochs", enabled=progress)
    epoch = 0
    try:
        while True:
            lg = loss_and_grad(wpv, wkq, problem)
            loss0 = lg.loss if loss0 is None else loss0
            if not math.isfinite(lg.loss) or lg.loss > 1e8 * max(loss0, 1e-30):
                raise TrainingDivergedError(
                    f"gradient descent diverged at epoch {epoch} with lr={lr:.3g} (loss {lg.loss:.3g}); "
                    f"use a smaller learning rate (e.g. {lr / 10:.2g}) or leave lr unset for the stable default"
                )
            ab = model.ab
            rec = {"loss": lg.loss, "ab": ab, "max_offdiag": model.max_offdiag}
            hist["epoch"].append(epoch)
            for k, v in rec.items():
                hist[k].append(v)
            hist["abs_a"].append(model.a.abs().tolist())
            hist["abs_b"].append(model.b.abs().tolist())
            if test is not None and (epoch % cfg.eval_every == 0):
                ev = evaluate_last(wpv.detach(), wkq.detach(), test[0], test[1])
                hist["test_epoch"].append(epoch)
                hist["ratio"].append(ev["ratio"])
                hist["mse_last"].append(ev["mse_last"])
                rec.update(ev)
            if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
                snapshots.append((epoch, wkq.detach().cpu().clone(), wpv.detach().cpu().clone()))
            if on_epoch is not None:
                on_epoch(epoch, rec)
            if epoch >= 1:
                prev = hist["ab"][-2]
                calm = calm + 1 if abs(ab - prev) <= cfg.tol * max(abs(ab), 1e-12) else 0
                converged = calm >= cfg.patience and epoch >= cfg.min_epochs
            if converged or epoch >= cfg.max_epochs:
                break
            gwpv, gwkq = lg.grad_wpv, lg.grad_wkq
            if masks is not None:
                gwkq = gwkq * masks[0]
                gwpv = gwpv * masks[1]
            with torch.no_grad():
                wkq.sub_(lr * gwkq)
                wpv.sub_(lr * gwpv)
            epoch += 1
            bar.update(1)
            if epoch % 10 == 0:
                bar.set_postfix(ab=f"{ab:.5g}", loss=f"{lg.loss:.4g}")
    finally:
        bar.close()
    if not snapshots or snapshots[-1][0] != epoch:
        snapshots.append((epoch, wkq.detach().cpu().clone(), wpv.detach().cpu().clone()))
    return hist, snapshots, epoch, converged
