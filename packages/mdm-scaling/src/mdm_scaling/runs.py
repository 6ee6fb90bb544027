"""What each ``mdm-scaling`` command does, as library functions: one frozen config in, one report dataclass out.

The console script (`mdm_scaling.cli`), the tour's demo and a notebook call the same functions::

    from gen_common.cli import RunContext
    from mdm_scaling.runs import SweepRun, sweep

    report = sweep(SweepRun(), RunContext(out="runs/sweep"))

Files are written only through ``ctx.output(name)`` (the shared output-folder policy). torch is imported inside
the functions, so that ``mdm-scaling --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg
from gen_common.config import TrainConfig
from mdm_scaling.config import SweepConfig

__all__ = [
    "PAPER_SETTINGS",
    "BenchRun",
    "ConvertRun",
    "EvalRun",
    "FitRun",
    "GenerateRun",
    "PresetsRun",
    "ReverseRun",
    "ShiftRun",
    "SpeedRun",
    "SweepRun",
    "TrainRun",
    "bench",
    "convert",
    "evaluate",
    "fit",
    "generate",
    "presets",
    "reverse",
    "shift",
    "speed",
    "sweep",
    "train",
]

# The paper's settings (App. B.1 and the official code): stochastic sequence length with probability 0.01, the
# official sampler's default remasking ("origin" = random), and the official bf16 RoPE cache for SMDM checkpoints.
PAPER_SETTINGS: dict[str, Any] = {"ssl_prob": 0.01, "remasking": "random", "rope_cache": "bfloat16"}
_SETTINGS_HELP = "'paper': the paper's settings (stochastic length 0.01, official remasking, bf16 RoPE cache)"
_TEXT_HELP = "training text file, character level (default: the bundled pydoc corpus)"
TRAIN_WRITES = ("model/config.json", "model/model.safetensors", "model/tokenizer.json")


# --- configs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresetsRun:
    """List the model size presets (paper sizes 6M…2121M and tiny CPU sizes)."""

    vocab_size: int = arg(32000, help="vocabulary size the parameter counts assume", min=1)


def _paper_train(steps: int = 300, lr: float = 5e-3) -> TrainConfig:
    # the paper's optimiser (App. B.1); the warmup follows --warmup-fraction of --steps
    return TrainConfig(
        steps=steps,
        lr=lr,
        weight_decay=0.1,
        betas=(0.9, 0.95),
        warmup_steps=3,
        schedule="cosine",
        min_lr_ratio=0.1,
        grad_clip=1.0,
        log_every=50,
    )


@dataclass(frozen=True)
class TrainRun:
    """Train an MDM or an ARM (resumes from OUT/checkpoints); the model goes to OUT/model."""

    arch: Literal["mdm", "arm"] = arg(help="masked diffusion or autoregressive")
    preset: str = arg("tiny-19k", help="size preset (see `presets`)")
    text: Path | None = arg(None, help=_TEXT_HELP)
    batch_size: int = arg(16, help="sequences per step", min=1)
    length: int = arg(32, help="training sequence length L", min=1)
    settings: Literal["default", "paper"] = arg("default", help=_SETTINGS_HELP)
    ssl_prob: float | None = arg(
        None, help="stochastic sequence length probability (default 0; --settings paper: 0.01)", min=0, max=1
    )
    init: Path | None = arg(None, help="start from this model folder (fine-tuning) instead of fresh weights")
    sft: Path | None = arg(None, help='JSONL of {"prompt", "response"}: train on responses given prompts')
    prompt_dropout: float = arg(0.0, help="with --sft, MDM: drop the prompt (supervised CFG)", min=0, max=1)
    compile: bool = arg(False, help="torch.compile the forward pass (GPU)")
    eval_samples: int = arg(32, help="Monte Carlo draws of the MDM validation bound", min=1)
    warmup_fraction: float | None = arg(
        0.01,
        help="warmup as a fraction of --steps (the paper: 1%%; 'none': use --warmup-steps)",
        min=0,
        max=1,
    )
    resume: bool = arg(True, help="resume from the checkpoints in OUT/checkpoints")
    train: TrainConfig = field(default_factory=_paper_train)


def _cli_sweep() -> SweepConfig:
    return SweepConfig(
        budgets=(1e9, 2.5e9, 6e9),
        sizes=("tiny-1k", "tiny-2k", "tiny-4k", "tiny-8k", "tiny-19k", "tiny-33k"),
        lr=1e-2,
        eval_samples=16,
        min_steps=35,
        max_steps=500,
    )


@dataclass(frozen=True)
class SweepRun:
    """IsoFLOP sweep: budgets x sizes x archs -> OUT/runs.csv (resumes the runs already in it)."""

    text: Path | None = arg(None, help=_TEXT_HELP)
    resume: bool = arg(True, help="continue OUT/runs.csv (--no-resume with --overwrite starts it over)")
    sweep: SweepConfig = field(default_factory=_cli_sweep)


@dataclass(frozen=True)
class FitRun:
    """Fit L*(C) = A·C^-alpha and N*(C) = k·C^beta per arch; plot IsoFLOPs/frontier.

    Reads a runs CSV (columns arch,params,tokens,flops,loss; budget optional): per arch the IsoFLOP minima (a
    parabola in log N per budget), then L*(C) = A·C^-alpha and N*(C) = k·C^beta. With --json prints
    {"<arch>": {"A", "alpha", "k", "beta", "points"}, ..., "compute_gap": {...}, "figures": [...]}; writes
    isoflop.png and frontier.png to --out (default: the CSV's folder).
    """

    runs: Path = arg(positional=True, help="CSV with columns arch,params,tokens,flops,loss (budget optional)")
    reference: str = arg("arm", help="arch the compute gap is measured against")


@dataclass(frozen=True)
class _ModelArgs:
    model: Path | None = arg(None, help="model folder (save_pretrained) of either arch")
    smdm: Path | None = arg(None, help="an official SMDM checkpoint file instead of --model")
    preset: str | None = arg(None, help="with --smdm: the paper size (e.g. 1028M)")
    tokenizer: str | None = arg(None, help="tokenizer.json or HF tokenizer (default: MODEL/tokenizer.json)")
    settings: Literal["default", "paper"] = arg("default", help=_SETTINGS_HELP)
    rope_cache: Literal["float32", "bfloat16"] | None = arg(
        None,
        help="RoPE table precision (default: the model's; --smdm: float32, or bfloat16 with --settings paper, "
        "which reproduces the official logits)",
    )


@dataclass(frozen=True)
class EvalRun(_ModelArgs):
    """Zero-shot accuracy on JSONL tasks (context/choices/answer or context/target)."""

    tasks: tuple[Path, ...] = arg(
        (), positional=True, help="task files; none: a cloze task from the bundled corpus"
    )
    method: Literal["mc", "chain_rule"] = arg("mc", help="MDM likelihood: Monte Carlo bound or chain rule")
    cfg: float = arg(0.0, help="unsupervised CFG weight w (MDM)")
    num_samples: int = arg(128, help="Monte Carlo draws per choice ('mc')", min=1)
    estimator: Literal["k", "lambda", "t"] = arg("k", help="DCE estimator of the 'mc' method")
    official_settings: bool = arg(
        False, help="per-task method/CFG of the official eval script (implied by --settings paper)"
    )
    limit: int | None = arg(None, help="first N examples per task", min=1)
    cloze: int = arg(50, help="examples of the built-in cloze task", min=1)


@dataclass(frozen=True)
class GenerateRun(_ModelArgs):
    """Sample text from an MDM (radd sampler, CFG) or an ARM (KV cache)."""

    prompt: str = arg("The ", help="text the samples start with")
    length: int = arg(64, help="total length in tokens, prompt included", min=1)
    steps: int = arg(32, help="MDM sampling steps", min=1)
    cfg: float = arg(0.0, help="unsupervised CFG weight w (MDM)")
    remasking: Literal["random", "confidence"] | None = arg(
        None, help="MDM remasking (default: random, the official 'origin')"
    )
    temperature: float = arg(1.0, help="sampling temperature (0: greedy)", min=0)
    num_samples: int = arg(2, help="sequences to sample", min=1)


@dataclass(frozen=True)
class SpeedRun:
    """Generation time and quality: MDM at several step counts vs ARM+KV cache."""

    mdm: Path | None = arg(None, help="MDM folder (default: train a tiny one)")
    arm: Path | None = arg(None, help="ARM folder (default: train a tiny one)")
    reference: Path | None = arg(None, help="ARM scoring the samples (default: train an independent one)")
    preset: str = arg("tiny-49k", help="size of the models trained when none is given")
    train_steps: int = arg(400, help="ARM training steps of the models trained when none is given", min=1)
    mdm_train_steps: int | None = arg(
        None,
        help="MDM training steps (default: twice --train-steps); MDMs need far more compute for the ARM's quality "
        "(the paper's scaling laws: ~16x), so raise it until the MDM's quality curve crosses the ARM's",
        min=1,
    )
    mdm_steps: tuple[int, ...] = arg((8, 16, 32, 64), help="MDM sampling step counts", min=1)
    prompt_len: int = arg(8, help="prompt tokens", min=1)
    length: int = arg(64, help="total length in tokens", min=2)
    num_samples: int = arg(16, help="sequences per method", min=1)
    remasking: Literal["random", "confidence"] = arg("random", help="MDM remasking")
    temperature: float = arg(1.0, help="sampling temperature", min=0)
    cfg: float = arg(0.0, help="MDM unsupervised CFG weight (doubles its NFE)")
    repeats: int = arg(3, help="timed runs per method; the fastest counts", min=1)
    tolerance: float = arg(
        0.0, help="nats/token by which an MDM may trail the ARM and still count as matched quality", min=0
    )


@dataclass(frozen=True)
class ReverseRun:
    """Reverse curse on synthetic 'NAME is DESCRIPTION' facts (both archs)."""

    facts: int = arg(24, help="synthetic facts (3 to 256)", min=3, max=256)
    preset: str = arg("tiny-49k", help="size preset")
    steps: int = arg(1000, help="training steps", min=1)
    batch_size: int = arg(32, help="sequences per step", min=1)
    lr: float = arg(1e-2, help="peak learning rate", gt=0)
    sample_steps: int = arg(16, help="MDM sampling steps", min=1)
    cfg: float = arg(0.0, help="MDM guidance (official reverse eval: 0.8)")


@dataclass(frozen=True)
class ShiftRun:
    """Loss on held-out vs shifted text (temporal/distribution shift)."""

    text: Path | None = arg(None, help="training text file (default: bundled corpus)")
    shifted: Path | None = arg(None, help="shifted text file (default: stdlib docstrings)")
    preset: str = arg("tiny-49k", help="size preset")
    steps: int = arg(400, help="training steps", min=1)
    length: int = arg(32, help="sequence length", min=1)
    lr: float = arg(1e-2, help="peak learning rate", gt=0)
    eval_samples: int = arg(32, help="Monte Carlo draws of the MDM bound", min=1)


@dataclass(frozen=True)
class ConvertRun:
    """Convert an official SMDM checkpoint to a save_pretrained folder (--out)."""

    checkpoint: Path = arg(positional=True, help="official .safetensors (or fabric .pth) file")
    preset: str | None = arg(None, help="paper size, e.g. 170M (gives the head count)")
    n_head: int | None = arg(None, help="attention heads (when no --preset)", min=1)
    block_size: int = arg(2048, help="context length", min=1)
    rope_cache: Literal["float32", "bfloat16"] = arg(
        "float32", help="RoPE table precision; bfloat16 = the official cache (reproduces the official logits)"
    )


@dataclass(frozen=True)
class BenchRun:
    """KV cache, radd cache and CFG cost, each against a baseline in one run."""

    preset: str = arg("tiny-49k", help="size preset")
    length: int = arg(64, help="total length in tokens", min=1)
    steps: int = arg(128, help="MDM steps (the cache pays when steps >= new tokens)", min=1)
    batch_size: int = arg(8, help="sequences per run", min=1)
    repeats: int = arg(3, help="timed repeats", min=1)


# --- reports ------------------------------------------------------------------------------------------------------


@dataclass
class TableReport:
    """A table (``columns`` + ``rows``) and whatever goes with it."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class TrainReport:
    arch: str
    preset: str
    params: int
    total_params: int
    steps: int
    resumed_from: int
    tokens: float
    flops: float
    train_loss: float
    val_loss: float | None
    model: Path


@dataclass
class SweepReport:
    runs: int
    csv: Path
    fit: dict[str, Any] | str


@dataclass
class EvalReport:
    model: str
    tasks: dict[str, dict[str, Any]]


@dataclass
class GenerateReport:
    samples: list[str]
    nfe: float


@dataclass
class SpeedReport:
    rows: list[dict[str, Any]]
    matched: dict[str, Any]
    reference: str


@dataclass
class RowsReport:
    rows: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConvertReport:
    model_class: str
    config: Any
    params: int
    out: Path


# --- helpers ------------------------------------------------------------------------------------------------------


def _data(text: Path | None) -> Any:
    from mdm_scaling.data import TokenData

    if text is not None:
        p = Path(text).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"text file not found: {p}")
        return TokenData.from_text(p.read_text(encoding="utf-8"))
    return TokenData.bundled()


def _data_with(text: Path | None, tok: Any) -> Any:
    """The training text encoded with an existing model's tokenizer (continued pre-training)."""
    import torch

    from gen_common.text import bundled_corpus, split_tokens
    from mdm_scaling.data import TokenData

    body = Path(text).read_text(encoding="utf-8") if text else bundled_corpus()
    ids = torch.as_tensor(
        tok.encode(body, errors="replace") if hasattr(tok, "alphabet") else tok.encode(body)
    )
    tr, va = split_tokens(ids, 0.05)
    return TokenData(tr, va, tok.vocab_size, tok)


def _load(run: _ModelArgs, device: Any) -> tuple[Any, Any]:
    from mdm_scaling.convert import load_smdm_checkpoint
    from mdm_scaling.model import load_model
    from mdm_scaling.tokenizers import load_tokenizer

    # --settings paper switches only official checkpoints to the bf16 table; models trained here keep theirs.
    rope = run.rope_cache or (PAPER_SETTINGS["rope_cache"] if run.settings == "paper" and run.smdm else None)
    if run.smdm:
        if not run.tokenizer:
            raise ValueError("--smdm needs --tokenizer (the TinyLlama tokenizer folder the checkpoint uses)")
        model = load_smdm_checkpoint(
            run.smdm, preset_name=run.preset, rope_cache=rope or "float32", device=device
        )
    elif run.model:
        model = load_model(run.model, device=device)
        if rope is not None:
            model.set_rope_cache(rope)
    else:
        raise ValueError("pass --model DIR (a trained model) or --smdm CKPT --preset SIZE --tokenizer TOK")
    tok = load_tokenizer(run.tokenizer or run.model)
    vocab = getattr(tok, "vocab_size", None)
    if isinstance(vocab, int) and vocab > model.config.vocab_size:
        raise ValueError(f"tokenizer has {vocab} tokens but the model only {model.config.vocab_size}")
    return model, tok


def _write_model(ctx: RunContext, model: Any, tok: Any = None, prefix: str = "", **metadata: Any) -> None:
    """``save_pretrained`` (and the tokenizer) through the output policy (``RunContext.publish``: config last)."""

    def write(folder: Path) -> None:
        model.save_pretrained(folder, overwrite=True, **metadata)
        if tok is not None and hasattr(tok, "save"):
            tok.save(folder / "tokenizer.json")

    ctx.publish(write, prefix=prefix)


# --- commands -----------------------------------------------------------------------------------------------------


def presets(run: PresetsRun, ctx: RunContext | None = None) -> TableReport:
    """The size presets (Table 5 of the paper, plus tiny CPU sizes) with their non-embedding parameters."""
    from mdm_scaling.config import PRESETS, non_embedding_params, preset

    rows = [
        [name, nl, h, d, f, non_embedding_params(preset(name, vocab_size=run.vocab_size))]
        for name, (nl, h, d, f) in PRESETS.items()
    ]
    return TableReport(["preset", "layers", "heads", "d_model", "ffn", "non_embedding_params"], rows)


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    """Train an MDM (the masked diffusion loss, Eq. 3) or an ARM on the bundled corpus, a text, or SFT pairs."""
    import torch

    from gen_common.seeding import make_generator
    from mdm_scaling.compute import mean_sequence_length, training_flops
    from mdm_scaling.config import preset
    from mdm_scaling.data import eval_windows, load_sft_pairs, make_batch_fn, make_sft_batch_fn
    from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM, load_model
    from mdm_scaling.objectives import loss_fn_for, sft_loss_fn_for, validation_loss
    from mdm_scaling.tokenizers import load_tokenizer
    from mdm_scaling.training import train_lm

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("train writes a model folder: give an output folder (--out DIR)")
    out = Path(ctx.out).expanduser()
    if run.prompt_dropout and not run.sft:
        raise ValueError("--prompt-dropout needs --sft (prompts to drop)")
    ssl_prob = run.ssl_prob
    if ssl_prob is None:
        ssl_prob = PAPER_SETTINGS["ssl_prob"] if run.settings == "paper" else 0.0
    cls = MaskedDiffusionLM if run.arch == "mdm" else AutoregressiveLM
    tok = None
    if run.init:
        model = load_model(run.init)
        if not isinstance(model, cls):
            raise ValueError(
                f"--init holds a {type(model).__name__}, not a {cls.__name__} (--arch {run.arch})"
            )
        tok = load_tokenizer(run.init)
    if run.sft:
        if tok is None:
            raise ValueError(
                "--sft fine-tunes a trained model: pass --init MODEL_DIR (its tokenizer is reused)"
            )
        pairs = load_sft_pairs(run.sft)
        pad = tok.encode("\n") if hasattr(tok, "alphabet") and "\n" in tok.alphabet else [0]
        batch_fn = make_sft_batch_fn(pairs, tok, run.batch_size, run.length, int(pad[0]))
        loss_fn = sft_loss_fn_for(model, run.prompt_dropout)
        data = None
    else:
        data = _data(run.text) if tok is None else _data_with(run.text, tok)
        batch_fn = make_batch_fn(data.train, run.batch_size, run.length, ssl_prob)
        loss_fn = None
        tok = data.tokenizer
    if not run.init:
        cfg = preset(run.preset, vocab_size=data.vocab_size, block_size=run.length + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            model = cls(cfg)
        loss_fn = loss_fn_for(model)
    tcfg = dataclasses.replace(run.train, seed=ctx.seed)
    if run.warmup_fraction is not None:
        tcfg = dataclasses.replace(tcfg, warmup_steps=max(1, round(run.warmup_fraction * tcfg.steps)))
    res = train_lm(
        model,
        batch_fn,
        tcfg,
        loss_fn=loss_fn,
        out_dir=out / "checkpoints",
        device=ctx.torch_device(),
        progress=ctx.progress,
        resume=run.resume,
        compile=run.compile,
    )
    model.eval()
    loss = None
    if data is not None:
        val = eval_windows(data.val, 64, run.length).to(next(model.parameters()).device)
        loss = validation_loss(model, val, num_samples=run.eval_samples, generator=make_generator(ctx.seed))
    if int(os.environ.get("RANK", "0")) == 0:  # under `accelerate launch`, rank 0 writes the model
        _write_model(ctx, model, tok, prefix="model/")
    steps = tcfg.steps
    tokens = steps * run.batch_size * mean_sequence_length(run.length, 0.0 if run.sft else ssl_prob)
    return TrainReport(
        arch=run.arch,
        preset=model.config.name or run.preset,
        params=model.num_params(),
        total_params=model.num_params(non_embedding=False),
        steps=steps,
        resumed_from=res.resumed_from,
        tokens=tokens,
        flops=training_flops(model.num_params(), tokens),
        train_loss=res.final_loss,
        val_loss=loss,
        model=out / "model",
    )


def sweep(run: SweepRun, ctx: RunContext | None = None) -> SweepReport:
    """IsoFLOP sweep (Sec. 3.1): every (budget, size, arch) trained for D = C / (6N) tokens -> OUT/runs.csv."""
    from mdm_scaling.scaling import fit_scaling_laws
    from mdm_scaling.sweep import run_sweep

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("sweep writes runs.csv: give an output folder (--out DIR)")
    csv_path = Path(ctx.out).expanduser() / "runs.csv"
    if csv_path.exists() and not run.resume:
        ctx.output(
            "runs.csv"
        ).unlink()  # refused unless --overwrite: then this command's own table starts over
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(run.sweep, seed=ctx.seed)
    rows = run_sweep(
        cfg, _data(run.text), csv_path=csv_path, device=ctx.torch_device(), progress=ctx.progress
    )
    if not rows:
        raise ValueError(
            "no (budget, size) pair buys between --min-steps and --max-steps steps; widen the grid"
        )
    try:
        fits = fit_scaling_laws(rows)
        fit_: dict[str, Any] | str = {
            a: {"A": f.A, "alpha": f.alpha, "beta": f.beta, "bracketed": f"{f.bracketed} of {len(f.points)}"}
            for a, f in fits.items()
        }
    except ValueError as exc:
        fit_ = f"not enough runs to fit: {exc}"
    return SweepReport(len(rows), csv_path, fit_)


def fit(run: FitRun, ctx: RunContext | None = None) -> dict[str, Any]:
    """Scaling laws of a runs CSV (Sec. 3.1, Fig. 1), the compute gap between archs, and the two plots."""
    import numpy as np

    from mdm_scaling.scaling import compute_gap, fit_scaling_laws, plot_frontier, plot_isoflops, read_runs

    ctx = RunContext.of(ctx)
    rows = read_runs(run.runs)
    if ctx.out is None:
        ctx = dataclasses.replace(ctx, out=Path(run.runs).expanduser().parent)
    iso, front = ctx.output("isoflop.png"), ctx.output("frontier.png")  # refusals before any work
    fits = fit_scaling_laws(rows)
    result: dict[str, Any] = {a: f.to_dict() for a, f in fits.items()}
    ref = run.reference
    if ref in fits and len(fits) > 1:
        budgets = sorted({p.budget for f in fits.values() for p in f.points})
        mid = float(np.exp(np.mean(np.log(budgets))))
        result["compute_gap"] = {
            "reference": ref,
            "at_budget": mid,
            **{
                a: {
                    "gap": compute_gap(fits[ref], f, mid),
                    "per_budget": {str(c): compute_gap(fits[ref], f, c) for c in budgets},
                }
                for a, f in fits.items()
                if a != ref
            },
        }
    result["figures"] = [str(plot_isoflops(rows, fits, iso)), str(plot_frontier(fits, front))]
    return result


def evaluate(run: EvalRun, ctx: RunContext | None = None) -> EvalReport:
    """Zero-shot accuracy: MDM likelihoods (Monte Carlo bound or chain rule) with unsupervised CFG, or an ARM's."""
    from gen_common.seeding import make_generator
    from gen_common.text import bundled_corpus
    from mdm_scaling.objectives import is_autoregressive
    from mdm_scaling.zeroshot import (
        OFFICIAL_TASK_SETTINGS,
        CausalLMScorer,
        MaskedLMScorer,
        cloze_task,
        evaluate_task,
        load_jsonl_task,
    )

    ctx = RunContext.of(ctx)
    model, tok = _load(run, ctx.torch_device())
    tasks = [load_jsonl_task(t) for t in run.tasks]
    if not tasks:
        tasks = [cloze_task(bundled_corpus()[-60_000:], run.cloze, seed=ctx.seed, name="pydoc-cloze")]
    results = {}
    for task in tasks:
        if is_autoregressive(model):
            scorer: Any = CausalLMScorer(model)
        else:
            method, cfg = run.method, run.cfg
            official = run.official_settings or run.settings == "paper"
            if official and task.name.lower() in OFFICIAL_TASK_SETTINGS:
                s = OFFICIAL_TASK_SETTINGS[task.name.lower()]
                method, cfg = s["method"], s["cfg"]
            scorer = MaskedLMScorer(
                model,
                method=method,
                cfg=cfg,
                num_samples=run.num_samples,
                estimator=run.estimator,
                generator=make_generator(ctx.seed),
            )
        results[task.name] = evaluate_task(scorer, tok, task, limit=run.limit, progress=ctx.progress)
    return EvalReport(str(run.model or run.smdm), results)


def generate(run: GenerateRun, ctx: RunContext | None = None) -> GenerateReport:
    """Sample from an MDM (radd's cached sampler, unsupervised CFG) or an ARM (KV cache)."""
    import torch

    from gen_common.seeding import make_generator
    from mdm_scaling.generation import arm_generate, mdm_generate
    from mdm_scaling.objectives import is_autoregressive

    ctx = RunContext.of(ctx)
    model, tok = _load(run, ctx.torch_device())
    ids = tok.encode(run.prompt)
    ids = torch.as_tensor(ids if not isinstance(ids, torch.Tensor) else ids.tolist(), dtype=torch.long)
    dev = next(model.parameters()).device
    if len(ids) >= run.length:
        raise ValueError(f"the prompt has {len(ids)} tokens; --length {run.length} leaves no room")
    gen = make_generator(ctx.seed)
    if is_autoregressive(model):
        out = arm_generate(
            model,
            ids.to(dev)[None].repeat(run.num_samples, 1),
            run.length - len(ids),
            temperature=run.temperature,
            generator=gen,
        )
    else:
        out = mdm_generate(
            model,
            ids.to(dev),
            run.length,
            run.steps,
            cfg=run.cfg,
            remasking=run.remasking or PAPER_SETTINGS["remasking"],
            temperature=run.temperature,
            generator=gen,
            num_samples=run.num_samples,
        )
    return GenerateReport([tok.decode(t.tolist()) for t in out.tokens.cpu()], out.nfe)


def speed(run: SpeedRun, ctx: RunContext | None = None) -> SpeedReport:
    """Generation speed at matched quality (Sec. 5, Fig. 3): MDM step counts vs an ARM with a KV cache."""
    from mdm_scaling.config import preset
    from mdm_scaling.data import eval_windows, make_batch_fn
    from mdm_scaling.model import load_model
    from mdm_scaling.objectives import is_autoregressive
    from mdm_scaling.speed import matched_quality_speedup, speed_table
    from mdm_scaling.training import paper_config, train_pair

    ctx = RunContext.of(ctx)
    dev = ctx.torch_device()
    if not run.prompt_len < run.length:
        raise ValueError(f"--prompt-len {run.prompt_len} must be below --length {run.length}")
    data = _data(None)
    if run.mdm and run.arm:
        mdm, arm = load_model(run.mdm, device=dev), load_model(run.arm, device=dev)
        if mdm.config.vocab_size != arm.config.vocab_size:
            raise ValueError("the MDM and the ARM must share a vocabulary")
        if is_autoregressive(mdm) or not is_autoregressive(arm):
            raise ValueError("--mdm must be a MaskedDiffusionLM folder and --arm an AutoregressiveLM folder")
        for name, m in (("--mdm", mdm), ("--arm", arm)):
            if m.config.block_size < run.length:
                raise ValueError(f"{name} has block_size {m.config.block_size} < --length {run.length}")
        from mdm_scaling.tokenizers import load_tokenizer

        if getattr(load_tokenizer(run.mdm), "alphabet", None) != data.tokenizer.alphabet:
            raise ValueError(
                "the given models were not trained on the bundled corpus alphabet; prompts need it"
            )
    elif run.mdm or run.arm:
        raise ValueError("pass both --mdm and --arm, or neither (tiny ones are trained)")
    else:
        # Trained on windows as long as the generated sequences: a model asked for longer text than it was trained
        # on is out of distribution (the bidirectional MDM most of all), which would bias the comparison.
        cfg = preset(run.preset, vocab_size=data.vocab_size, block_size=run.length + 1)
        n = run.train_steps
        models = train_pair(
            make_batch_fn(data.train, 16, run.length),
            cfg,
            paper_config(n, 1e-2, log_every=n, seed=ctx.seed),
            steps={"mdm": run.mdm_train_steps or n * 2, "arm": n},
            device=dev,
            progress=ctx.progress,
        )
        mdm, arm = models["mdm"], models["arm"]
    if run.reference:
        ref = load_model(run.reference, device=dev)
        if not is_autoregressive(ref):
            raise ValueError(
                "--reference must be an AutoregressiveLM folder (it scores samples left to right)"
            )
        if ref.config.vocab_size != arm.config.vocab_size or ref.config.block_size < run.length - 1:
            raise ValueError("--reference must share the models' vocabulary and cover --length tokens")
        ref_name = str(run.reference)
    else:
        # An ARM scoring its own samples flatters them; score with an independently trained one (another seed).
        cfg = arm.config
        n = run.train_steps * 2
        ref = train_pair(
            make_batch_fn(data.train, 16, run.length),
            cfg.replace(block_size=max(cfg.block_size, run.length)),
            paper_config(n, 1e-2, log_every=n, seed=ctx.seed + 1),
            archs=("arm",),
            device=dev,
            progress=ctx.progress,
        )["arm"]
        ref_name = f"an independent ARM ({cfg.name or 'same size'}, seed {ctx.seed + 1}, {n} steps)"
    prompts = eval_windows(data.val, run.num_samples, run.prompt_len)[:, : run.prompt_len]
    rows = speed_table(
        mdm,
        arm,
        ref,
        prompts,
        run.length,
        mdm_steps=list(run.mdm_steps),
        remasking=run.remasking,
        temperature=run.temperature,
        cfg=run.cfg,
        seed=ctx.seed,
        repeats=run.repeats,
    )
    return SpeedReport(rows, matched_quality_speedup(rows, tolerance=run.tolerance), ref_name)


def reverse(run: ReverseRun, ctx: RunContext | None = None) -> RowsReport:
    """The reverse curse (Sec. 5, Table 3) on synthetic facts, both archs trained alike."""
    from mdm_scaling.reverse import run_reverse_study

    ctx = RunContext.of(ctx)
    res = run_reverse_study(
        run.facts,
        size=run.preset,
        steps=run.steps,
        batch_size=run.batch_size,
        lr=run.lr,
        sample_steps=run.sample_steps,
        cfg=run.cfg,
        seed=ctx.seed,
        device=ctx.torch_device(),
        progress=ctx.progress,
    )
    return RowsReport(res["rows"], {k: v for k, v in res.items() if k not in ("rows", "models", "facts")})


def shift(run: ShiftRun, ctx: RunContext | None = None) -> RowsReport:
    """Held-out vs shifted-text loss of an MDM and an ARM trained alike."""
    from mdm_scaling.shift import run_shift_study

    def read(p: Path | None) -> str | None:
        if p is None:
            return None
        if not Path(p).is_file():
            raise FileNotFoundError(f"text file not found: {p}")
        return Path(p).read_text(encoding="utf-8")

    ctx = RunContext.of(ctx)
    rows = run_shift_study(
        read(run.text),
        read(run.shifted),
        size=run.preset,
        steps=run.steps,
        length=run.length,
        lr=run.lr,
        num_samples=run.eval_samples,
        seed=ctx.seed,
        device=ctx.torch_device(),
        progress=ctx.progress,
    )
    return RowsReport(rows)


def convert(run: ConvertRun, ctx: RunContext | None = None) -> ConvertReport:
    """An official SMDM checkpoint -> a `save_pretrained` folder in ``ctx.out``."""
    from mdm_scaling.convert import load_smdm_checkpoint

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("convert writes a model folder: give an output folder (--out DIR)")
    if not Path(run.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {run.checkpoint}")
    model = load_smdm_checkpoint(
        run.checkpoint,
        preset_name=run.preset,
        n_head=run.n_head,
        block_size=run.block_size,
        rope_cache=run.rope_cache,
    )
    _write_model(ctx, model, source=str(run.checkpoint))
    return ConvertReport(type(model).__name__, model.config, model.num_params(), Path(ctx.out).expanduser())


def bench(run: BenchRun, ctx: RunContext | None = None) -> RowsReport:
    """KV cache, radd cache and CFG cost, each timed against its baseline in one run."""
    from mdm_scaling.bench import run_benchmarks

    ctx = RunContext.of(ctx)
    dev = ctx.torch_device()
    rows = run_benchmarks(
        size=run.preset,
        length=run.length,
        steps=run.steps,
        batch=run.batch_size,
        repeats=run.repeats,
        device=dev,
    )
    return RowsReport(rows, {"device": str(dev)})
