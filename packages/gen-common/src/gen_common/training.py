"""One training loop for every package, parameterised by the loss.

- accelerate when it is installed (``accelerate launch`` scales it to many GPUs; one process on a CPU),
  else a plain single-process loop with the same behaviour;
- bf16 autocast on CUDA by default, AdamW, warmup + cosine/constant schedule, gradient clipping, EMA;
- atomic checkpoints (a new folder is written, then renamed, then the ``latest`` pointer is replaced) and exact
  resume: the batch and loss randomness of step k come from ``(seed, k, process)`` alone, and the model, EMA,
  optimizer, schedule and global RNG states are restored, so stopping and resuming gives the same weights as an
  uninterrupted run.

``batch_fn(step, generator) -> batch`` builds the step's batch on the CPU; ``loss_fn(model, batch, generator)``
returns a scalar loss or ``(loss, {name: float})``.

Several processes (``accelerate launch --multi_gpu --num_processes N``, which is torchrun: on CPUs too, where
``--cpu --num_processes N`` without MPI starts only one process): each process draws its own batch of the
``batch_fn``'s size from ``(seed, step, process)`` (a per-process batch size, as accelerate's data loaders and
``per_device_train_batch_size`` mean it; the global batch is N of them, all different), gradients are averaged,
only the main process writes files, and checkpoints keep every process's RNG state so a resumed run continues
bit-identically. ``GEN_TRAIN_DEBUG_BATCHES=PATH`` makes each process append ``step sha256`` of each of its batches
to ``PATH.rank<R>`` (a debugging hook the multi-process test uses to prove the processes saw different data).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gen_common.atomic import atomic_path, atomic_write_json, atomic_write_text
from gen_common.checkpoint import CheckpointError, load_state_dict, save_state_dict
from gen_common.cli import progress as progress_bar
from gen_common.config import TrainConfig, config_to_dict
from gen_common.device import resolve_device
from gen_common.seeding import make_generator, split_seed

__all__ = ["EMA", "TrainConfig", "TrainResult", "latest_checkpoint", "lr_lambda", "move_to", "train"]


@dataclass
class TrainResult:
    steps: int
    history: list[dict[str, float]]
    checkpoint: Path | None
    resumed_from: int

    @property
    def final_loss(self) -> float:
        return self.history[-1]["loss"] if self.history else float("nan")


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base lr at a step: linear warmup, then constant or cosine to ``min_lr_ratio``."""

    def fn(step: int) -> float:
        if config.warmup_steps > 0 and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        span = max(1, config.steps - config.warmup_steps)
        progress_ = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress_))

    return fn


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers, kept in float32."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            k: v.detach().float().clone() for k, v in model.state_dict().items() if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach().float(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise CheckpointError(f"EMA state lacks {sorted(missing)[:3]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        sd = model.state_dict()
        for k, v in self.shadow.items():
            sd[k].copy_(v.to(sd[k].dtype))


def move_to(batch: Any, device: torch.device) -> Any:
    """Move tensors inside nested tuples/lists/dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


class _Plain:
    """The few accelerate.Accelerator methods the loop uses, for a single process without accelerate."""

    def __init__(self, device: torch.device, mixed_precision: str) -> None:
        self.device = device
        self.mixed_precision = mixed_precision
        self.is_main_process = True
        self.process_index = 0
        self.num_processes = 1

    def prepare(self, *objs: Any) -> Any:
        return objs if len(objs) > 1 else objs[0]

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.mixed_precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.mixed_precision == "bf16" else torch.float16
            with torch.autocast(self.device.type, dtype=dtype):
                yield
        else:
            yield

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, params: Any, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def wait_for_everyone(self) -> None:
        pass


def _make_accelerator(device: torch.device, mixed_precision: str) -> Any:
    try:
        from accelerate import Accelerator
    except ImportError:
        return _Plain(device, mixed_precision)
    from accelerate.state import AcceleratorState

    # accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with another precision
    # (two trainings in one notebook, or stage 1 then stage 2): drop that state (not the process group) first.
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    # accelerate picks the device from the launch environment; on a single process honour the caller's choice.
    return Accelerator(mixed_precision=mixed_precision, cpu=device.type == "cpu")


def _see_through(wrapped: Any, base: torch.nn.Module) -> Any:
    """A DistributedDataParallel wrapper hides the model's own attributes (``config``, ``mask_id``) that loss
    functions written for the bare model read; let unknown attribute lookups fall through to the model. The
    wrapper still runs the forward (its gradient synchronisation needs that)."""
    if wrapped is base or not isinstance(wrapped, torch.nn.Module):
        return wrapped
    cls = type(wrapped)

    def __getattr__(self: Any, name: str) -> Any:
        try:
            return cls.__getattr__(self, name)
        except AttributeError:
            return getattr(base, name)

    wrapped.__class__ = type(cls.__name__, (cls,), {"__getattr__": __getattr__})
    return wrapped


def _rng_state() -> dict[str, Any]:
    return {
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _all_rng_states(acc: Any) -> list[dict[str, Any]]:
    """Every process's global RNG state, in process order (a collective: all processes must call it). Dropout
    draws from these, and they differ per process when the processes were seeded per device."""
    mine = _rng_state()
    if acc.num_processes == 1:
        return [mine]
    states: list[Any] = [None] * acc.num_processes
    # Pickled between our own processes only; nothing is loaded from a file.
    torch.distributed.all_gather_object(states, mine)
    return states


def _batch_digest(batch: Any) -> str:
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            h.update(x.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(x, Mapping):
            for k in sorted(x):
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                feed(v)
        else:
            h.update(repr(x).encode())

    feed(batch)
    return h.hexdigest()


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The folder the ``latest`` pointer names, or None."""
    pointer = Path(out_dir) / "latest"
    if not pointer.is_file():
        return None
    path = Path(out_dir) / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise CheckpointError(
            f"{pointer} names {path.name}, which is missing; delete {pointer} to start over"
        )
    return path


def _save_checkpoint(
    out_dir: Path,
    step: int,
    model: torch.nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    history: list[dict[str, float]],
    config: TrainConfig,
    extra: Mapping[str, Any],
    keep: int,
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    name = f"step-{step:08d}"
    final = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_state_dict(model.state_dict(), tmp / "model.safetensors")
    if ema is not None:
        save_state_dict(ema.state_dict(), tmp / "ema.safetensors")
    # Optimizer and schedule states are nested dicts of tensors and numbers: torch.save of those loads back with
    # weights_only=True, so no code runs when resuming. "rng"/"cuda_rng" are the main process's RNG state (the
    # format single-process checkpoints always had); "rng_per_process" holds every process's, in process order.
    states = rng_states or [_rng_state()]
    with atomic_path(tmp / "optimizer.pt") as p:
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                **states[0],
                "rng_per_process": states,
            },
            p,
        )
    atomic_write_json(
        tmp / "trainer_state.json",
        {"step": step, "history": history, "config": config_to_dict(config), **extra},
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    atomic_write_text(out_dir / "latest", name + "\n")
    olds = sorted(p for p in out_dir.glob("step-*") if p.is_dir() and p != final)
    for old in olds[: max(0, len(olds) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _read_trainer_state(ckpt: Path) -> dict[str, Any]:
    path = ckpt / "trainer_state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        int(state["step"]), list(state["history"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path} cannot be read ({type(exc).__name__}); delete {ckpt} to resume from an earlier checkpoint, "
            "or start over without resuming"
        ) from exc
    return state


def _load_optimizer_state(ckpt: Path) -> dict[str, Any]:
    """``optimizer.pt`` with ``weights_only=True``: a corrupt or tampered file is refused (nothing in it runs)."""
    path = ckpt / "optimizer.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (refused object), RuntimeError/EOFError (truncated), OSError
        raise CheckpointError(
            f"{path} is not a loadable optimizer state (corrupt, or holds objects that weights_only loading "
            f"refuses: {type(exc).__name__}); delete {ckpt} to resume from an earlier checkpoint, or start over "
            "without resuming"
        ) from exc
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "rng"} <= set(state):
        raise CheckpointError(f"{path} does not hold an optimizer state written by gen_common.training")
    return state


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any, torch.Generator], Any],
    batch_fn: Callable[[int, torch.Generator], Any],
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = True,
    device: torch.device | str = "auto",
    progress: bool | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    extra_state: Mapping[str, Any] | None = None,
    stop_after: int | None = None,
    show_progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``config.steps`` optimizer steps (resuming from ``out_dir`` when it holds a
    checkpoint and ``resume``). After training, the model holds the EMA weights if EMA is on.

    ``stop_after=k`` runs at most k steps in this call and checkpoints there (time-sliced or preemptible jobs);
    calling again with the same arguments continues exactly where it stopped.

    Returns the loss history (one entry per ``log_every`` steps, and the last step). ``show_progress`` is the
    deprecated name of ``progress``.
    """
    if show_progress is not None and progress is None:
        progress = show_progress
    dev = resolve_device(device)
    mp = config.mixed_precision
    if mp == "auto":
        mp = "bf16" if dev.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    acc = _make_accelerator(dev, mp)
    model.to(acc.device if hasattr(acc, "device") else dev)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and "embed" not in n.lower() else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    ema = EMA(model, config.ema_decay) if config.ema_decay else None

    start, history, resumed_from = 0, [], 0
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and resume:
        ckpt = latest_checkpoint(out)
        if ckpt is not None:
            state = _read_trainer_state(ckpt)
            model.load_state_dict(load_state_dict(ckpt / "model.safetensors", device=acc.device))
            if ema is not None:
                if not (ckpt / "ema.safetensors").is_file():
                    raise CheckpointError(
                        f"{ckpt} has no EMA weights but ema_decay is set; resume with the same config"
                    )
                ema.load_state_dict(load_state_dict(ckpt / "ema.safetensors"))
            opt_state = _load_optimizer_state(ckpt)
            optimizer.load_state_dict(opt_state["optimizer"])
            scheduler.load_state_dict(opt_state["scheduler"])
            per_process = opt_state.get("rng_per_process") or []
            # This process's own RNG state when the checkpoint was written by as many processes; else the main one's.
            rng = per_process[acc.process_index] if len(per_process) == acc.num_processes else opt_state
            torch.set_rng_state(rng["rng"])
            if torch.cuda.is_available() and len(rng["cuda_rng"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda_rng"])
            start, history, resumed_from = int(state["step"]), list(state["history"]), int(state["step"])

    base_model = model
    model, optimizer = acc.prepare(model, optimizer)
    model = _see_through(model, base_model)
    model.train()
    debug_batches = os.environ.get("GEN_TRAIN_DEBUG_BATCHES")
    debug_file = Path(f"{debug_batches}.rank{acc.process_index}") if debug_batches else None
    end = config.steps if stop_after is None else min(config.steps, start + max(0, stop_after))
    bar = progress_bar(total=config.steps, initial=start, desc="train", enabled=progress)
    run_loss, run_n = 0.0, 0
    step = start
    try:
        for step in range(start, end):
            gen = make_generator(split_seed(config.seed, step, acc.process_index))
            batch = move_to(batch_fn(step, gen), acc.device)
            if debug_file is not None:
                with open(debug_file, "a", encoding="utf-8") as fh:
                    fh.write(f"{step} {_batch_digest(batch)}\n")
            with acc.autocast():
                out_ = loss_fn(model, batch, gen)
            loss, metrics = out_ if isinstance(out_, tuple) else (out_, {})
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {step}; lower the learning rate or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if config.grad_clip:
                acc.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(acc.unwrap_model(model))
            run_loss += float(loss.detach())
            run_n += 1
            bar.update(1)
            done = step + 1
            if done % max(1, config.log_every) == 0 or done == config.steps:
                entry = {
                    "step": float(done),
                    "loss": run_loss / run_n,
                    "lr": scheduler.get_last_lr()[0],
                    **{k: float(v) for k, v in metrics.items()},
                }
                history.append(entry)
                bar.set_postfix(loss=f"{entry['loss']:.4f}")
                if on_log is not None:
                    on_log(entry)
                run_loss, run_n = 0.0, 0
            if (
                out is not None
                and config.checkpoint_every
                and done % config.checkpoint_every == 0
                and done != end
            ):
                acc.wait_for_everyone()
                rng_states = _all_rng_states(acc)
                if acc.is_main_process:
                    _save_checkpoint(
                        out,
                        done,
                        acc.unwrap_model(model),
                        ema,
                        optimizer,
                        scheduler,
                        history,
                        config,
                        extra_state or {},
                        config.keep_checkpoints,
                        rng_states,
                    )
    finally:
        bar.close()
    final_ckpt = None
    base = acc.unwrap_model(model)
    # Decided before anything is written, identically on every process (the RNG gather below is collective).
    write_final = out is not None and (end > start or latest_checkpoint(out) is None)
    rng_states = _all_rng_states(acc) if write_final else None
    if write_final and acc.is_main_process:
        final_ckpt = _save_checkpoint(
            out,
            end,
            base,
            ema,
            optimizer,
            scheduler,
            history,
            config,
            extra_state or {},
            config.keep_checkpoints,
            rng_states,
        )
    acc.wait_for_everyone()  # the other processes read the `latest` pointer only once it names the new checkpoint
    if out is not None and final_ckpt is None:
        final_ckpt = latest_checkpoint(out)
    if ema is not None and end == config.steps:
        ema.copy_to(base)
    base.eval()
    return TrainResult(steps=end, history=history, checkpoint=final_ckpt, resumed_from=resumed_from)
