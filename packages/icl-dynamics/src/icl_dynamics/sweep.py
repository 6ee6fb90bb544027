"""The paper's Appendix-B grid: three x₁ families × scales × three initialisations, resumable.

Each run writes ``<out>/runs/<run_id>.json`` (config, theory, summary, trajectories, final matrices) atomically;
a run whose file exists with the same config is skipped, so an interrupted sweep resumes where it stopped.
``<out>/summary.csv`` and ``<out>/summary.json`` collect every finished run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gen_common.atomic import atomic_write_json, atomic_write_text
from gen_common.cli import progress as progress_bar
from gen_common.seeding import make_generator, split_seed
from icl_dynamics.data import FAMILIES, X1Dist, generate_sequences
from icl_dynamics.model import LinearSelfAttention, LSAConfig
from icl_dynamics.theory import moments, predict_theory
from icl_dynamics.training import GDConfig, train

__all__ = ["PAPER_INITS", "PAPER_SETTINGS", "RunSpec", "load_runs", "paper_grid", "run_one", "run_sweep"]

PAPER_INITS: tuple[tuple[float, float], ...] = ((0.1, 0.1), (0.5, 1.5), (2.0, 2.0))

# Appendix B (and the official plot.py): (family, scale) -> (learning rate, epochs).
PAPER_SETTINGS: dict[tuple[str, float], tuple[float, int]] = {
    ("gaussian", 0.5): (1e-3, 200),
    ("gaussian", 1.0): (1e-4, 150),
    ("gaussian", 2.0): (2e-6, 201),
    ("sparse", 0.5): (3e-2, 200),
    ("sparse", 1.0): (1e-3, 201),
    ("sparse", 2.0): (1e-4, 121),
    ("ones", 1.0): (5e-4, 200),
}


@dataclass(frozen=True)
class RunSpec:
    family: str
    scale: float
    a0: float
    b0: float
    d: int = 5
    T: int = 100
    m: int = 10_000
    m_test: int = 10_000
    lr: float | None = None  # None: stable learning rate, train until converged
    epochs: int = 200  # the epoch budget (max_epochs when lr is None)
    grad_mask: str = "none"
    dtype: str = "complex64"
    seed: int = 1
    balanced: bool = False  # variance-reduced data (see X1Dist.sample); the paper's runs use plain draws
    tol: float = 1e-5  # convergence tolerance on the relative change of ab (only when lr is None)

    @property
    def run_id(self) -> str:
        tag = f"{self.family}-s{self.scale:g}-a{self.a0:g}-b{self.b0:g}"
        return tag if self.grad_mask == "none" else f"{tag}-mask{self.grad_mask}"

    @property
    def dist(self) -> X1Dist:
        return X1Dist(self.family, self.scale)

    def data_key(self) -> tuple[Any, ...]:
        return (
            self.family,
            self.scale,
            self.d,
            self.T,
            self.m,
            self.m_test,
            self.dtype,
            self.seed,
            self.balanced,
        )


def paper_grid(
    *,
    families: Sequence[str] = ("gaussian", "sparse", "ones"),
    lr_mode: str = "paper",
    d: int = 5,
    T: int = 100,
    m: int = 10_000,
    m_test: int = 10_000,
    epochs: int | None = None,
    dtype: str = "complex64",
    seed: int = 1,
    masked: bool = False,
    scales: Sequence[float] | None = None,
    balanced: bool = False,
) -> list[RunSpec]:
    """The Appendix-B runs. ``lr_mode="paper"`` uses the paper's rates and epochs; ``"auto"`` the stable
    rate and training until converged (``epochs`` then caps the epochs, default 3000). ``masked`` adds the
    all-ones runs with the off-diagonal gradients of the two mesa blocks masked (the paper's masked runs).
    ``scales`` keeps only those scales of each family (default: all of the paper's); ``balanced`` draws
    variance-reduced training data (see `X1Dist.sample`)."""
    if lr_mode not in ("paper", "auto"):
        raise ValueError(f"lr_mode must be 'paper' or 'auto', got {lr_mode!r}")
    unknown = [f for f in families if f not in FAMILIES or f == "custom"]
    if unknown:
        raise ValueError(f"unknown families {unknown}; the grid has gaussian, sparse, ones")
    specs = []
    for (family, scale), (lr, paper_epochs) in PAPER_SETTINGS.items():
        if family not in families or (scales is not None and scale not in scales):
            continue
        for a0, b0 in PAPER_INITS:
            if lr_mode == "paper":
                run_lr, run_epochs = lr, epochs if epochs is not None else paper_epochs
            else:
                run_lr, run_epochs = None, epochs if epochs is not None else 3000
            specs.append(
                RunSpec(
                    family, scale, a0, b0, d, T, m, m_test, run_lr, run_epochs, "none", dtype, seed, balanced
                )
            )
    if masked and "ones" in families:
        specs += [replace(s, grad_mask="offdiag") for s in specs if s.family == "ones"]
    return specs


def _complex_json(t: torch.Tensor) -> dict[str, list[Any]]:
    t = t.detach().cpu()
    return {"real": t.real.tolist(), "imag": t.imag.tolist()}


def run_one(
    spec: RunSpec,
    *,
    device: torch.device | str = "cpu",
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train one run of the grid and return its JSON-ready record."""
    if data is None:
        data = make_data(spec, device)
    x, x_test = data
    model = LinearSelfAttention(LSAConfig(spec.d, spec.a0, spec.b0, spec.dtype)).to(device)
    cfg = GDConfig(lr=spec.lr, max_epochs=spec.epochs, tol=spec.tol, grad_mask=spec.grad_mask)
    if spec.lr is not None:
        cfg = replace(cfg, tol=0.0, patience=1 << 62)  # the paper's runs have a fixed epoch budget
    result = train(model, x, config=cfg, x_test=x_test, progress=progress)
    theory = predict_theory(moments(spec.dist, spec.d), spec.d, spec.T)
    summary = result.summary()
    summary["predicted_ab"] = theory.predicted_ab
    summary["rel_error_ab"] = summary["ab"] / theory.predicted_ab - 1
    h = result.history
    return {
        "run_id": spec.run_id,
        "spec": asdict(spec),
        "theory": theory.as_dict(),
        "summary": summary,
        "history": {
            k: h[k] for k in ("epoch", "loss", "ab", "max_offdiag", "test_epoch", "ratio", "mse_last")
        },
        "final": {"wkq": _complex_json(model.wkq), "wpv": _complex_json(model.wpv)},
    }


def make_data(spec: RunSpec, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Training and test sequences of a setting; the seed depends on the setting, not on the init, so the
    three initialisations share their data (as in the official runs)."""
    fam_idx = FAMILIES.index(spec.family)
    gen = make_generator(split_seed(spec.seed, fam_idx, round(spec.scale * 1000)))
    kw = {"generator": gen, "dtype": spec.dtype, "device": device}
    x = generate_sequences(spec.m, spec.T, spec.d, spec.dist, balanced=spec.balanced, **kw)
    xt = generate_sequences(spec.m_test, spec.T, spec.d, spec.dist, **kw)
    return x, xt


def load_runs(out_dir: str | Path) -> list[dict[str, Any]]:
    """All finished run records under ``out_dir/runs`` (sorted by run id)."""
    run_dir = Path(out_dir) / "runs"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} does not exist: run `icl-dynamics sweep --out {out_dir}` first")
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]


SUMMARY_COLUMNS = (
    "run_id",
    "family",
    "scale",
    "a0",
    "b0",
    "lr",
    "epochs",
    "ab",
    "predicted_ab",
    "rel_error_ab",
    "final_loss",
    "ratio_last",
    "mse_last",
    "max_offdiag",
    "converged",
    "seconds",
)


def summary_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        s, spec = r["summary"], r["spec"]
        rows.append(
            {
                "run_id": r["run_id"],
                "family": spec["family"],
                "scale": spec["scale"],
                "a0": spec["a0"],
                "b0": spec["b0"],
                "lr": s["lr"],
                "epochs": s["epochs"],
                "ab": s["ab"],
                "predicted_ab": s["predicted_ab"],
                "rel_error_ab": s["rel_error_ab"],
                "final_loss": s["final_loss"],
                "ratio_last": s.get("ratio_last"),
                "mse_last": s.get("mse_last"),
                "max_offdiag": s["max_offdiag"],
                "converged": s["converged"],
                "seconds": s["seconds"],
            }
        )
    return rows


def run_sweep(
    specs: Sequence[RunSpec],
    out_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    resume: bool = True,
    progress: bool | None = None,
    on_run: Callable[[dict[str, Any], bool], None] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) ``specs``; returns the summary rows. ``on_run(record, skipped)`` sees every run."""
    out = Path(out_dir)
    run_dir = out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    cached: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
    records = []
    bar = progress_bar(specs, total=len(specs), desc="sweep runs", enabled=progress, leave=True)
    for spec in bar:
        path = run_dir / f"{spec.run_id}.json"
        if path.exists():
            record = json.loads(path.read_text())
            if record.get("spec") == json.loads(json.dumps(asdict(spec))):
                if not resume:
                    raise FileExistsError(f"{path} exists; pass --overwrite to redo the sweep or resume it")
                records.append(record)
                if on_run is not None:
                    on_run(record, True)
                continue
            if resume:
                raise FileExistsError(
                    f"{path} holds a run with a different configuration; use another --out or --overwrite"
                )
        bar.set_postfix(run=spec.run_id)
        key = spec.data_key()
        if key not in cached:
            cached.clear()  # one setting's data at a time: the three inits of a setting run back to back
            cached[key] = make_data(spec, device)
        record = run_one(spec, device=device, data=cached[key], progress=progress)
        atomic_write_json(path, record)
        records.append(record)
        if on_run is not None:
            on_run(record, False)
    rows = summary_rows(records)
    atomic_write_json(out / "summary.json", rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "summary.csv", buf.getvalue())
    return rows
