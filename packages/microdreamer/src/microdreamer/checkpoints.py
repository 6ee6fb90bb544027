"""Atomic checkpoints of a long SIR (or SDS) run, and exact resume.

A checkpoint is one safetensors file, ``<folder>/iter-00000007.safetensors`` (7 outer iterations done), written
atomically by gen_common's ``save_state_dict`` (a temporary file renamed into place: a crash leaves the previous
checkpoint intact, never half of one). Its tensors are the representation's parameters, Adam's moments, the
densification statistics and every random state the run draws from (the loop's explicit generator, torch's global
CPU and CUDA generators, numpy's and Python's); its JSON metadata holds the rest: iterations done, the optimisation
step, Adam's step counts and learning rates, the diffusion-call counter, the history, the schedule values so far,
the training config and the settings that must match on resume. Loading unpickles nothing.

Densification changes the number of Gaussians, so a resume rebuilds the optimiser on the loaded parameters and
puts the moments back by name: shapes always agree with the checkpoint. A resumed run then computes exactly what
the uninterrupted run computes (the tests check the Gaussians bit for bit).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from gen_common.checkpoint import CheckpointError, CheckpointNotFoundError, load_state_dict, save_state_dict

__all__ = ["Checkpointer"]

STATE_KEY = "microdreamer.run_state"
FORMAT = 1
STATS = ("xyz_gradient_accum", "denom", "max_radii2D")


@dataclass
class Checkpointer:
    """Where and how often a loop checkpoints, and whether it starts from the latest checkpoint.

    ``every``: outer iterations (SDS: steps) between checkpoints, 0 for none; the last one is always written.
    ``keep``: how many of the newest checkpoints stay (older ones this loop wrote are removed).
    ``resume``: continue from the latest checkpoint in ``folder`` (a missing or corrupt one is a CheckpointError).
    """

    folder: Path
    every: int = 1
    keep: int = 2
    resume: bool = False
    resumed_from: int | None = None  # set by `restore`: the iterations the checkpoint held

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if self.every < 0 or self.keep < 1:  # keep = 0 would keep every checkpoint ([:-0] is empty)
            raise ValueError(
                f"checkpoints need every ≥ 0 and keep ≥ 1, got every={self.every}, keep={self.keep}"
            )

    def checkpoints(self) -> list[Path]:
        return sorted(self.folder.glob("iter-*.safetensors")) if self.folder.is_dir() else []

    def due(self, done: int, total: int) -> bool:
        return self.every > 0 and (done % self.every == 0 or done == total)

    def save(self, trainer, done: int, *, settings: dict[str, Any], extra: dict[str, Any]) -> Path:
        tensors, meta = _capture(trainer)
        meta |= {"format": FORMAT, "done": done, "settings": _plain(settings), "extra": extra}
        path = self.folder / f"iter-{done:08d}.safetensors"
        save_state_dict(tensors, path, metadata={STATE_KEY: json.dumps(meta)})
        for old in self.checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def restore(self, trainer, *, settings: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Load the latest checkpoint into ``trainer`` (its model, optimiser, counter, history, generators).
        Returns (iterations done, the loop's extra state)."""
        _check_model(trainer.model)
        found = self.checkpoints()
        if not found:
            raise CheckpointNotFoundError(
                f"no checkpoint to resume from in {self.folder}; run without --resume to start"
            )
        path = found[-1]
        hint = f"delete {path} to resume from the checkpoint before it, or start over without --resume"
        try:
            tensors = load_state_dict(path)
            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})[STATE_KEY])
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
        except (CheckpointError, SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{path} is not a readable microdreamer checkpoint ({type(exc).__name__}): truncated or corrupt; {hint}"
            ) from exc
        settings = _plain(settings)
        if meta.get("settings") != settings:
            old, new = _flat(meta.get("settings") or {}), _flat(settings)
            diff = [
                f"{k} {old.get(k)!r} → {new.get(k)!r}"
                for k in sorted(old.keys() | new.keys())
                if old.get(k) != new.get(k)
            ]
            raise CheckpointError(
                f"{path} was written with other settings ({', '.join(diff)}); resume with the same settings, "
                "or start over in another --out"
            )
        try:
            _restore(trainer, tensors, meta)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path} does not fit this run ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                + hint
            ) from exc
        self.resumed_from = int(meta["done"])
        return self.resumed_from, meta["extra"]


def _check_model(model) -> None:
    # restoring replaces entries of the model's own ``params`` dict (densification changes their shapes)
    if not isinstance(vars(model).get("params"), dict):
        raise ValueError(
            f"{type(model).__name__} keeps no params dict of its own: checkpoints support GaussianModel and VoxelNeRF"
        )


def _capture(trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    model, opt = trainer.model, trainer.optimizer
    _check_model(model)
    tensors: dict[str, torch.Tensor] = {f"param.{k}": v.detach() for k, v in model.params.items()}
    adam: dict[str, dict[str, Any]] = {}
    for group in opt.param_groups:
        name = group["name"]
        st = opt.state.get(group["params"][0])
        adam[name] = {"lr": group["lr"], "step": None if st is None else st["step"]}
        if st is not None:
            tensors[f"adam.{name}.exp_avg"] = st["exp_avg"]
            tensors[f"adam.{name}.exp_avg_sq"] = st["exp_avg_sq"]
    for k in STATS:
        if hasattr(model, k):
            tensors[f"stats.{k}"] = getattr(model, k)
    tensors["rng.loop"] = trainer.generator.get_state()
    for name, g in trainer.generators.items():
        tensors[f"rng.gen.{name}"] = g.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    # numpy's legacy global state is what third-party code a backend calls may draw from: saved as it is
    np_state = np.random.get_state()  # noqa: NPY002
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    counter = trainer.counter
    meta = {
        "step": trainer.step,
        "history": asdict(trainer.history),
        "adam": adam,
        "counter": None if counter is None else asdict(counter),
        "config": asdict(model.config) if is_dataclass(getattr(model, "config", None)) else None,
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),  # json writes its tuples as lists; _tuples turns them back
        "num_primitives": len(model),
    }
    return tensors, meta


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def _plain(x):
    return json.loads(json.dumps(x))  # tuples become lists, as they come back from the file


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _restore(trainer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    from microdreamer.loop import History

    model = trainer.model
    _check_model(model)
    device = model.xyz.device
    for k in list(model.params):
        model.params[k] = tensors[f"param.{k}"].to(device).requires_grad_(True)
    if meta["config"] is not None:
        model.config = type(model.config)(**meta["config"])
        opt = model.training_setup(model.config)  # a fresh Adam on the loaded (possibly densified) parameters
    else:
        opt = model.training_setup()
    for group in opt.param_groups:
        name = group["name"]
        saved = meta["adam"][name]
        group["lr"] = saved["lr"]
        if saved["step"] is not None:
            opt.state[group["params"][0]] = {
                "step": int(saved["step"]),
                "exp_avg": tensors[f"adam.{name}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(device),
            }
    trainer.optimizer = model.optimizer = opt
    for k in STATS:
        if f"stats.{k}" in tensors:
            setattr(model, k, tensors[f"stats.{k}"].to(device))
    trainer.step = int(meta["step"])
    trainer.history = History(**meta["history"])
    trainer.resume_clock(trainer.history.seconds[-1] if trainer.history.seconds else 0.0)
    if trainer.counter is not None and meta["counter"] is not None:
        for k, v in meta["counter"].items():
            setattr(trainer.counter, k, v)
    trainer.generator.set_state(tensors["rng.loop"])
    for name, g in trainer.generators.items():
        g.set_state(tensors[f"rng.gen.{name}"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    random.setstate(_tuples(meta["python"]))
