"""What each ``radd`` command does, as library functions: one frozen config in, one report dataclass out.

The console script (`radd.cli`), the tour's demo (`radd.demo`) and a notebook call the same functions::

    from gen_common.cli import RunContext
    from radd.runs import SampleRun, TrainRun, sample, train

    train(TrainRun(length=32), RunContext(out="runs/tiny"))
    print(sample(SampleRun(model="runs/tiny", steps=32)).samples)

Files are written only through ``ctx.output(name)`` (the shared output-folder policy: an existing file is replaced
only with ``overwrite``; nothing else is touched). torch is imported inside the functions, so that ``radd --help``
stays fast.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_common.cli import RunContext, arg
from gen_common.config import TrainConfig

__all__ = [
    "BenchReport",
    "BenchRun",
    "ConvertReport",
    "ConvertRun",
    "EvalReport",
    "EvalRun",
    "SampleReport",
    "SampleRun",
    "TrainReport",
    "TrainRun",
    "bench",
    "convert",
    "evaluate",
    "sample",
    "train",
]

LossName = Literal["t_dse", "t_dce", "lambda_dce", "k_dce"]

_MODEL_HELP = (
    "model folder (from `radd train`/`radd convert`, or an official checkpoint folder) or a Hugging Face id"
)
_TOKENIZER_HELP = (
    "'char', a char tokenizer JSON, or a LOCAL Hugging Face tokenizer folder (GPT-2 for the released "
    "checkpoints); default: the tokenizer saved in the model folder"
)
_DTYPE_HELP = "auto (bf16 autocast on CUDA, fp32 on CPU), float32, bfloat16"
_COMPILE_HELP = "torch.compile the model (pays off on GPU for long runs)"

# The files `radd train` writes into --out (its resume state lives in OUT/checkpoints).
TRAIN_WRITES = (
    "config.json",
    "model.safetensors",
    "train_log.json",
    "radd_tokenizer.json",
    "tokenizer*.json",
)


# --- configs ------------------------------------------------------------------------------------------------------


def _default_train() -> TrainConfig:
    return TrainConfig(steps=300, lr=3e-3, warmup_steps=20, schedule="cosine", min_lr_ratio=0.1, log_every=30)


@dataclass(frozen=True)
class TrainRun:
    """Train a RADD model (offline on the bundled corpus by default).

    Writes config.json, model.safetensors, the tokenizer and train_log.json into --out, and resumes from
    OUT/checkpoints when a run there was interrupted. Reports the validation NLL bound vs the unigram baseline.
    """

    text: Path | None = arg(None, help="UTF-8 training text (default: the bundled pydoc corpus)")
    tokenizer: str = arg(
        "char",
        help="'char' (one id per character of the bundled corpus, or of --text) or a local Hugging Face "
        "tokenizer folder",
    )
    max_chars: int | None = arg(None, help="use only the first N characters of the text", min=1)
    length: int = arg(64, help="sequence length", min=1)
    hidden: int = arg(64, help="hidden size", min=1)
    layers: int = arg(2, help="transformer blocks", min=1)
    heads: int = arg(4, help="attention heads", min=1)
    dropout: float = arg(0.0, help="residual dropout (official: 0.02)", min=0, lt=1)
    loss: LossName = arg("lambda_dce", help="training loss (all four are the same DCE bound)")
    batch_size: int = arg(32, help="sequences per step", min=1)
    eval_samples: int = arg(16, help="Monte Carlo draws for the final NLL bound", min=1)
    resume: bool = arg(True, help="resume from the checkpoints in OUT/checkpoints")
    train: TrainConfig = field(default_factory=_default_train)


@dataclass(frozen=True)
class _ModelArgs:
    model: str = arg(help=_MODEL_HELP)
    tokenizer: str | None = arg(None, help=_TOKENIZER_HELP)
    dtype: Literal["auto", "float32", "bfloat16"] = arg("auto", help=_DTYPE_HELP)
    compile: bool = arg(False, help=_COMPILE_HELP)


@dataclass(frozen=True)
class SampleRun(_ModelArgs):
    """Sample sequences (diffusion sampler with the cache, or any-order autoregressive).

    With --out, the samples are also written to OUT/samples.txt.
    """

    num_samples: int = arg(4, help="sequences to sample", min=1)
    length: int | None = arg(None, help="tokens per sample (default: the model's max_length)", min=1)
    steps: int | None = arg(None, help="sampling steps (default: length)", min=1)
    method: Literal["analytic", "euler"] = arg("analytic", help="reverse step")
    remasking: Literal["random", "confidence"] = arg("random", help="which masked tokens each step reveals")
    block_length: int | None = arg(
        None,
        help="semi-autoregressive blocks of this many tokens, left to right (LLaDA); must divide length",
        min=1,
    )
    cache: bool = arg(True, help="skip unchanged sequences (--no-cache re-evaluates every row: the baseline)")
    ordered: Literal["random", "forward", "backward"] | None = arg(
        None, help="any-order autoregressive sampler in this order instead of diffusion", metavar="ORDER"
    )
    temperature: float = arg(1.0, help="0 = greedy", min=0)
    top_k: int | None = arg(None, help="keep the k most likely tokens", min=1)
    top_p: float | None = arg(None, help="nucleus sampling", gt=0, max=1)
    prefix: str | None = arg(None, help="text the samples start with")
    suffix: str | None = arg(None, help="text the samples end with")


@dataclass(frozen=True)
class EvalRun(_ModelArgs):
    """NLL bound (nats/token) and perplexity bound on a text, or zero-shot perplexity on a benchmark as the paper
    reports it (--benchmark NAME --data FILE: official detokeniser, tokenisation + EOS, chunking; RADD Table 2).
    With --out, also writes OUT/eval.json."""

    text: Path | None = arg(None, help="UTF-8 text (default: the validation tail of the bundled corpus)")
    benchmark: Literal["lambada", "wikitext2", "wikitext103", "ptb", "lm1b", "openwebtext"] | None = arg(
        None, help="zero-shot benchmark read from --data (official protocol; the paper uses 1024 draws)"
    )
    data: Path | None = arg(
        None, help="local benchmark file: .txt, .jsonl, .parquet or a HF datasets cache .arrow file"
    )
    estimator: Literal["k", "lambda", "t"] = arg("k", help="DCE estimator")
    num_samples: int = arg(32, help="Monte Carlo draws per sequence", min=1)
    num_sequences: int | None = arg(
        None, help="windows evaluated (default: 32 of a text; every window of a benchmark)", min=1
    )
    length: int | None = arg(None, help="window length (default: the model's max_length)", min=1)
    batch_size: int | None = arg(None, help="rows per forward pass", min=1)


@dataclass(frozen=True)
class GenPPLRun:
    """Generative perplexity of samples under a local causal LM (GPT-2-large in the paper), with the samples'
    unigram entropy beside it (low-entropy samples game the metric). With --out, also writes OUT/gen_ppl.json."""

    samples: Path = arg(
        help="samples.txt from `radd sample --out`, a .jsonl (text field) or one sample per line"
    )
    scorer: Path = arg(
        help="local causal LM folder, e.g. gpt2-large (huggingface-cli download gpt2-large ...)"
    )
    batch_size: int = arg(8, help="chunks per forward pass", min=1)


@dataclass(frozen=True)
class ConvertRun:
    """Convert an official RADD checkpoint into this package's model folder (DST, or --out)."""

    src: str = arg(
        positional=True,
        help="official run directory (.hydra/config.yaml + checkpoints-meta/checkpoint.pth), folder "
        "(config.json + model.safetensors/pytorch_model.bin), weights file, training checkpoint.pth, or hub id",
    )
    dst: Path | None = arg(None, positional=True, help="output folder (or --out)")
    tokenizer: Path | None = arg(None, help="local tokenizer folder to copy beside the weights (e.g. gpt2)")
    ema: bool = arg(
        True, help="from an official training checkpoint, take the EMA weights (--no-ema: the raw weights)"
    )


@dataclass(frozen=True)
class BenchRun:
    """Cached vs uncached sampling: measured NFE vs expected_nfe and the wall-clock ratio.

    Without --model a random RADD of the given size is timed. With --out, also writes OUT/bench.json.
    """

    model: str | None = arg(None, help=_MODEL_HELP + " (default: a random model)")
    tokenizer: str | None = arg(None, help=_TOKENIZER_HELP)
    dtype: Literal["auto", "float32", "bfloat16"] = arg("auto", help=_DTYPE_HELP)
    compile: bool = arg(False, help=_COMPILE_HELP)
    length: int = arg(128, help="tokens per sequence", min=1)
    steps: tuple[int, ...] = arg((128, 512), help="step counts", min=1)
    num_samples: int = arg(4, help="batch size of the timed runs", min=1)
    nfe_samples: int = arg(32, help="sequences for the NFE statistic", min=1)
    repeats: int = arg(2, help="timed repeats (median)", min=1)
    hidden: int = arg(128, help="random model: hidden size", min=1)
    layers: int = arg(2, help="random model: transformer blocks", min=1)
    heads: int = arg(4, help="random model: attention heads", min=1)
    vocab: int = arg(103, help="random model: vocabulary size", min=1)


# --- reports ------------------------------------------------------------------------------------------------------


@dataclass
class TrainReport:
    model: Path
    params: int
    steps: int
    resumed_from: int
    final_train_loss: float
    val_nll_bound_nats_per_token: float
    val_unigram_baseline_nats: float
    train_unigram_entropy_nats: float
    train_seconds: float
    history: list[dict[str, float]]

    @property
    def final_loss(self) -> float:  # the name gen_common.training.TrainResult uses
        return self.final_train_loss


@dataclass
class SampleReport:
    samples: list[str]
    steps: int
    nfe: float
    expected_nfe: float | None
    seconds: float
    file: Path | None = None


@dataclass
class EvalReport:
    benchmark: str | None
    estimator: str
    num_sequences: int
    length: int
    num_samples: int
    nll_bound_nats_per_token: float
    stderr_nats_per_token: float
    perplexity_bound: float
    unigram_entropy_nats: float
    replaced_characters: int
    seconds: float
    file: Path | None = None


@dataclass
class GenPPLReport:
    scorer: str
    num_samples: int
    scored_tokens: int
    gen_perplexity: float
    nll_nats_per_token: float
    unigram_entropy_nats: float
    seconds: float
    file: Path | None = None


@dataclass
class ConvertReport:
    source: str
    destination: Path
    tokenizer: str | None
    config: dict[str, Any]


@dataclass
class BenchReport:
    model: str
    device: dict[str, Any]
    num_samples: int
    rows: list[dict[str, Any]]
    file: Path | None = None


# --- helpers ------------------------------------------------------------------------------------------------------


def _main_process() -> bool:
    """False on the other ranks of a multi-process launch (torch.distributed sets ``RANK``)."""
    return int(os.environ.get("RANK", "0")) == 0


def _load(model_id: str, tokenizer: str | None, compile_: bool, device: Any) -> tuple[Any, Any]:
    import torch

    from radd.model import RADD
    from radd.tokenizers import load_tokenizer

    model = RADD.from_pretrained(model_id, device=device)
    spec = tokenizer
    if spec is None:
        p = Path(model_id).expanduser()
        if not p.is_dir():
            raise ValueError("pass --tokenizer (a local tokenizer folder) for a model loaded from the hub")
        spec = str(p)
    tok = load_tokenizer(spec)
    if tok.vocab_size != model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tok.vocab_size} tokens but the model {model.config.vocab_size}; "
            "pass the tokenizer the model was trained with (--tokenizer)"
        )
    if compile_:
        model = torch.compile(model, dynamic=True)
    return model, tok


def _load_for_length(run: SampleRun | EvalRun, device: Any) -> tuple[Any, Any, Any, int]:
    """Model, tokenizer, config and the sequence length (``length`` or the model's; never beyond it)."""
    model, tok = _load(run.model, run.tokenizer, run.compile, device)
    cfg = model.config  # also through torch.compile's wrapper
    length = run.length or cfg.max_length
    if length > cfg.max_length:
        raise ValueError(
            f"--length {length} exceeds the model's max_length {cfg.max_length} (the length it was trained at)"
        )
    return model, tok, cfg, length


def _unknown(tok: Any, text: str) -> int:
    count = getattr(tok, "unknown_characters", None)
    return int(count(text)) if count is not None else 0


def _encode_optional(tok: Any, text: str | None) -> Any:
    if text is None:
        return None
    if _unknown(tok, text):
        raise ValueError(
            f"the prefix/suffix {text!r} has characters outside the model's alphabet; the samples could not keep them"
        )
    ids = tok.encode(text)
    if ids.numel() == 0:
        raise ValueError("the prefix/suffix encodes to no tokens")
    return ids


def _record(ctx: RunContext, name: str, report: Any) -> Path | None:
    """Keep a JSON record of the numbers in --out (when given)."""
    from gen_common.atomic import atomic_write_json
    from gen_common.jsonio import to_jsonable

    if ctx.out is None:
        return None
    path = ctx.output(name)
    atomic_write_json(path, to_jsonable({**dataclasses.asdict(report), "file": str(path)}))
    return path


# --- commands -----------------------------------------------------------------------------------------------------


def train(run: TrainRun, ctx: RunContext | None = None) -> TrainReport:
    """Train a RADD model with one of the four DCE losses (all bound the same NLL); save it to ``ctx.out``."""
    import torch

    import radd
    from gen_common.atomic import atomic_write_json
    from radd.data import TokenData, load_text
    from radd.model import RADD, RADDConfig
    from radd.tokenizers import CharTokenizerAdapter, load_tokenizer
    from radd.training import train_radd

    ctx = RunContext.of(ctx)
    if ctx.out is None:
        raise ValueError("train writes a model folder: give an output folder (--out DIR)")
    out = Path(ctx.out).expanduser()
    device = ctx.torch_device()
    text = load_text(run.text, run.max_chars)
    # 'char': the alphabet of the whole bundled corpus (what `radd eval` scores by default), or of the --text file
    # itself, so that none of the training characters is replaced
    if run.tokenizer == "char":
        tok = CharTokenizerAdapter.from_corpus(text if run.text is not None else None)
    else:
        tok = load_tokenizer(run.tokenizer)
    data = TokenData.from_ids(tok.encode(text), run.length)
    config = RADDConfig(
        vocab_size=tok.vocab_size,
        max_length=run.length,
        hidden_size=run.hidden,
        num_layers=run.layers,
        num_heads=run.heads,
        dropout=run.dropout,
    )
    torch.manual_seed(ctx.seed)  # the initial weights
    model = RADD(config)
    tcfg = dataclasses.replace(run.train, seed=ctx.seed)
    t0 = time.perf_counter()
    res = train_radd(
        model,
        data.batch_fn(run.batch_size),
        tcfg,
        loss=run.loss,
        out_dir=out / "checkpoints",
        resume=run.resume,
        device=device,
        progress=ctx.progress,
    )
    train_s = time.perf_counter() - t0
    model.eval()
    val = data.val_windows(32).to(device)
    nll = radd.estimate_nll(model, val, run.eval_samples, "k", torch.Generator().manual_seed(ctx.seed))
    report = TrainReport(
        model=out,
        params=model.num_parameters(),
        steps=res.steps,
        resumed_from=res.resumed_from,
        final_train_loss=res.final_loss,
        val_nll_bound_nats_per_token=float(nll.mean()) / run.length,
        val_unigram_baseline_nats=data.unigram_baseline(val.cpu(), tok.vocab_size),
        train_unigram_entropy_nats=data.unigram_entropy(tok.vocab_size),
        train_seconds=train_s,
        history=res.history,
    )

    def write(folder: Path) -> None:
        tok.save(folder)
        model.save_pretrained(folder, overwrite=True, loss=run.loss, steps=res.steps)

    if (
        _main_process()
    ):  # under `accelerate launch`, rank 0 writes the outputs (every rank holds the same model)
        ctx.publish(write)
        atomic_write_json(ctx.output("train_log.json"), dataclasses.asdict(report) | {"model": str(out)})
    return report


def sample(run: SampleRun, ctx: RunContext | None = None) -> SampleReport:
    """Sample with the cached analytic/Euler sampler (RADD §3.3) or the any-order AR sampler."""
    import torch

    import radd
    from gen_common.atomic import atomic_write_text
    from gen_common.device import autocast, resolve_dtype

    ctx = RunContext.of(ctx)
    device = ctx.torch_device()
    model, tok, cfg, length = _load_for_length(run, device)
    common = dict(
        generator=torch.Generator().manual_seed(ctx.seed),
        temperature=run.temperature,
        top_k=run.top_k,
        top_p=run.top_p,
        prefix=_encode_optional(tok, run.prefix),
        suffix=_encode_optional(tok, run.suffix),
        mask_id=cfg.vocab_size,
        device=device,
        progress=ctx.progress,
    )
    t0 = time.perf_counter()
    with autocast(device, resolve_dtype(run.dtype, device)):
        if run.ordered:
            out = radd.sample_ordered(model, run.num_samples, length, order=run.ordered, **common)
        else:
            out = radd.sample(
                model,
                run.num_samples,
                length,
                run.steps or length,
                cache=run.cache,
                method=run.method,
                remasking=run.remasking,
                block_length=run.block_length,
                **common,
            )
    seconds = time.perf_counter() - t0
    texts = [tok.decode(row) for row in out.tokens.cpu()]
    report = SampleReport(texts, out.steps, out.nfe, out.expected_nfe, seconds)
    if ctx.out is not None:
        report.file = ctx.output("samples.txt")
        atomic_write_text(report.file, "\n\n=====\n\n".join(texts) + "\n")
    return report


def evaluate(run: EvalRun, ctx: RunContext | None = None) -> EvalReport:
    """Monte Carlo NLL upper bound with the k-, λ- or t-DCE estimator."""
    import torch

    import radd
    from gen_common.device import autocast, resolve_dtype
    from radd.data import TokenData, load_text, unigram_entropy

    ctx = RunContext.of(ctx)
    device = ctx.torch_device()
    model, tok, cfg, length = _load_for_length(run, device)
    unknown = 0
    if run.benchmark is not None or run.data is not None:
        if run.benchmark is None or run.data is None or run.text is not None:
            raise ValueError("a benchmark needs both --benchmark NAME and --data FILE (and no --text)")
        from radd.zeroshot import benchmark_windows

        windows = benchmark_windows(run.data, run.benchmark, tok, length)
        windows = windows[: run.num_sequences] if run.num_sequences else windows
        ids = windows
    else:
        text = load_text(run.text)
        unknown = _unknown(tok, text)
        if unknown:
            # scored as the tokenizer's replacement character: the bound is for a slightly different text
            print(
                f"radd: warning: {unknown} character(s) of the text are outside the model's alphabet and were "
                "replaced",
                file=sys.stderr,
            )
        ids = tok.encode(text)
        num = run.num_sequences or 32
        if run.text is None:
            windows = TokenData.from_ids(ids, length).val_windows(num)
        else:
            n = min(num, len(ids) // length)
            if n < 1:
                raise ValueError(f"the text has {len(ids)} tokens, fewer than one window of {length}")
            windows = ids[: n * length].reshape(n, length)
    windows = windows.to(device)
    t0 = time.perf_counter()
    with autocast(device, resolve_dtype(run.dtype, device)):
        nll, se = radd.estimate_nll(
            model,
            windows,
            run.num_samples,
            run.estimator,
            torch.Generator().manual_seed(ctx.seed),
            batch_size=run.batch_size,
            mask_id=cfg.vocab_size,
            return_stderr=True,
        )
    n_seq = int(windows.shape[0])
    report = EvalReport(
        benchmark=run.benchmark,
        estimator=run.estimator,
        num_sequences=n_seq,
        length=length,
        num_samples=run.num_samples,
        nll_bound_nats_per_token=float(nll.double().mean()) / length,
        stderr_nats_per_token=float(se.double().pow(2).mean().sqrt()) / length / n_seq**0.5,
        perplexity_bound=radd.perplexity(nll, windows.numel()),
        unigram_entropy_nats=unigram_entropy(ids, cfg.vocab_size),
        replaced_characters=unknown,
        seconds=time.perf_counter() - t0,
    )
    report.file = _record(ctx, "eval.json", report)
    return report


def gen_ppl(run: GenPPLRun, ctx: RunContext | None = None) -> GenPPLReport:
    """Score samples with a local causal LM: exp(NLL per token) and the samples' mean unigram entropy."""
    from radd.genppl import generative_perplexity, load_scorer, read_samples

    ctx = RunContext.of(ctx)
    texts = read_samples(run.samples)
    model, tok = load_scorer(run.scorer, ctx.torch_device())
    t0 = time.perf_counter()
    r = generative_perplexity(texts, model, tok, batch_size=run.batch_size)
    report = GenPPLReport(
        scorer=str(run.scorer),
        num_samples=r.num_samples,
        scored_tokens=r.scored_tokens,
        gen_perplexity=r.perplexity,
        nll_nats_per_token=r.nll_nats_per_token,
        unigram_entropy_nats=r.unigram_entropy_nats,
        seconds=time.perf_counter() - t0,
    )
    report.file = _record(ctx, "gen_ppl.json", report)
    return report


def convert(run: ConvertRun, ctx: RunContext | None = None) -> ConvertReport:
    """Official checkpoint (folder, hub id, weights file or training ``checkpoint.pth``) -> a model folder."""
    from gen_common.config import read_json
    from radd.convert import load_official
    from radd.tokenizers import load_tokenizer

    ctx = RunContext.of(ctx)
    if run.dst is not None:
        if ctx.out is not None and Path(ctx.out).expanduser() != run.dst.expanduser():
            raise ValueError(f"give the output folder once: DST {run.dst} or --out {ctx.out}")
        ctx = dataclasses.replace(ctx, out=run.dst)
    if ctx.out is None:
        raise ValueError("give the output folder: radd convert SRC DST")
    tok = load_tokenizer(run.tokenizer) if run.tokenizer is not None else None
    model = load_official(run.src, ema=run.ema)

    def write(folder: Path) -> None:
        model.save_pretrained(folder, overwrite=True, converted_from=str(run.src))
        if tok is not None:
            tok.save(folder)

    ctx.publish(write)
    dst = Path(ctx.out).expanduser()
    cfg = read_json(dst / "config.json")
    return ConvertReport(
        source=run.src,
        destination=dst,
        tokenizer=None if run.tokenizer is None else str(run.tokenizer),
        config={k: v for k, v in cfg.items() if not k.startswith("_")},
    )


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    """NFE of the cached sampler vs ``expected_nfe`` and the uncached/cached wall-clock ratio, in one run."""
    import torch

    from gen_common.device import device_summary, resolve_dtype
    from radd.bench import bench_cache
    from radd.model import RADD, RADDConfig

    ctx = RunContext.of(ctx)
    device = ctx.torch_device()
    if run.model:
        model, _ = _load(run.model, run.tokenizer, run.compile, device)
        cfg = model.config  # also through torch.compile's wrapper
        source = run.model
    else:
        torch.manual_seed(ctx.seed)
        cfg = RADDConfig(
            vocab_size=run.vocab,
            max_length=run.length,
            hidden_size=run.hidden,
            num_layers=run.layers,
            num_heads=run.heads,
            dropout=0.0,
        )
        model = RADD(cfg).to(device).eval()
        torch.nn.init.normal_(model.head.weight, std=0.02)  # non-uniform predictions
        source = f"random RADD {run.layers}x{run.hidden}, V={run.vocab}"
    if run.length > cfg.max_length:
        raise ValueError(f"--length {run.length} exceeds the model's max_length {cfg.max_length}")
    rows = bench_cache(
        model,
        length=run.length,
        steps=list(run.steps),
        num_samples=run.num_samples,
        repeats=run.repeats,
        nfe_samples=run.nfe_samples,
        seed=ctx.seed,
        device=device,
        dtype=resolve_dtype(run.dtype, device),
        mask_id=cfg.vocab_size,
    )
    report = BenchReport(
        source, device_summary(device), run.num_samples, [dataclasses.asdict(r) for r in rows]
    )
    report.file = _record(ctx, "bench.json", report)
    return report
