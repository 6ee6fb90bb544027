"""One library function per command: ``(config, *, device, seed, out, progress) -> report``. The CLI, the demo and a
notebook call the same functions; nothing here parses arguments, prints or exits.

Models: ``--model tiny-sd`` / ``tiny-sdxl`` are offline toy pipelines (random weights); anything else is a local
folder or a hub id loaded with ``DiffusionPipeline.from_pretrained`` (``--refiner`` likewise, sharing the base's
second text encoder and VAE as the release does). Scorers (``--clip``): ``reference`` (the offline stand-in,
`ReferenceScorer`), ``open_clip:ARCH:WEIGHTS_FILE`` (e.g. ``open_clip:ViT-B-32:/models/ViT-B-32.pt``), or a local
transformers CLIP folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from gen_common.atomic import atomic_write_json
from gen_common.cli import RunContext
from gen_common.config import arg

__all__ = [
    "BenchRun",
    "EvaluateRun",
    "MineRun",
    "SampleRun",
    "SearchRun",
    "bench",
    "evaluate",
    "load_pipelines",
    "load_scorer",
    "mine",
    "sample",
    "search",
]

Progress = Callable[[str], None] | None


class RunError(ValueError):
    """A run's configuration cannot work (one line, exit code 2 from the CLI)."""


# ------------------------------------------------------------------------------------------------ loading


def _tiny_sdxl(seed: int = 0):
    """A tiny SDXL base + img2img refiner sharing its modules (exact base -> refiner hand-off)."""
    from gen_common.testing import sdxl_tiny

    base = sdxl_tiny.tiny_sdxl_pipeline(seed=seed)
    return base, sdxl_tiny.tiny_sdxl_img2img_pipeline(from_base=base)


def load_pipelines(model: str, refiner: str | None, device: Any, dtype: Any = None) -> tuple[Any, Any | None]:
    """(base, refiner or None) on ``device``."""
    import torch

    if model == "tiny-sd":
        from gen_common.testing.diffusers_tiny import tiny_sd_pipeline

        if refiner:
            raise RunError("tiny-sd has no refiner; use --model tiny-sdxl --refiner tiny for the hand-off")
        return tiny_sd_pipeline(seed=0).to(device), None
    if model == "tiny-sdxl":
        base, ref = _tiny_sdxl(0)
        return base.to(device), (ref.to(device) if refiner else None)
    import diffusers

    if not Path(model).exists() and "/" not in model:
        raise RunError(f"model {model!r} is neither a local folder nor a hub id (or tiny-sd / tiny-sdxl)")
    dtype = dtype or (torch.float16 if torch.device(device).type == "cuda" else torch.float32)
    try:
        base = diffusers.DiffusionPipeline.from_pretrained(model, torch_dtype=dtype).to(device)
        ref = None
        if refiner:
            ref = diffusers.DiffusionPipeline.from_pretrained(
                refiner, text_encoder_2=base.text_encoder_2, vae=base.vae, torch_dtype=dtype
            ).to(device)
    except OSError as exc:
        raise RunError(
            f"cannot load {model!r}: {str(exc).splitlines()[0]} (offline? pass a local folder)"
        ) from None
    for p in (base, ref):
        if p is not None:
            p.set_progress_bar_config(disable=True)
    return base, ref


def load_scorer(spec: str, device: Any = "cpu") -> Any:
    """``open_clip:ARCH:WEIGHTS`` or a transformers CLIP folder -> `CLIPScore` (``reference`` is built per pair)."""
    from iced_coke.scoring import CLIPScore, OpenCLIPBackend, TransformersCLIPBackend

    if spec.startswith("open_clip:"):
        parts = spec.split(":", 2)
        if len(parts) != 3:
            raise RunError(
                "open_clip scorer spec is open_clip:ARCH:WEIGHTS_FILE, e.g. open_clip:ViT-B-32:/m/ViT-B-32.pt"
            )
        try:
            return CLIPScore(OpenCLIPBackend.from_pretrained(parts[1], parts[2], device=device))
        except FileNotFoundError as exc:
            raise RunError(str(exc)) from None
    if Path(spec).is_dir():
        return CLIPScore(TransformersCLIPBackend.from_pretrained(spec, device=device))
    raise RunError(
        f"unknown scorer {spec!r}: use reference, open_clip:ARCH:WEIGHTS_FILE or a local CLIP folder"
    )


def _pipe_kwargs(model: str, guidance_scale: float | None, size: int | None) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if model.startswith("tiny-"):
        kw.update(height=32, width=32)
    if size:
        kw.update(height=size, width=size)
    if guidance_scale is not None:
        kw["guidance_scale"] = guidance_scale
    return kw


def _pairs(run: Any):
    from iced_coke.pairs import ConceptPair, load_pairs

    if run.pairs is not None:
        return load_pairs(run.pairs)
    if not (run.prompt and run.first_prompt):
        raise RunError("pass --pairs FILE, or --prompt and --first-prompt")
    return [
        ConceptPair(
            run.prompt,
            run.first_prompt,
            run.first_prompt,
            run.second_prompt or run.prompt,
            run.second_prompt or run.prompt,
        )
    ]


def _progress(ctx: RunContext) -> Progress:
    """One line per finished item on stderr, unless progress is off (``--json``)."""
    import sys

    from gen_common.cli import progress_enabled

    if not progress_enabled(ctx.progress, sys.stderr):
        return None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def _state_dir(ctx: RunContext) -> Path:
    """Where a resumable run keeps its JSONL state (the output folder; required)."""
    if ctx.out is None:
        raise RunError("this command keeps a resumable log: give an output folder (--out DIR)")
    p = Path(ctx.out).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def _scorer_for(spec: str, pipe, refiner, pair, T: int, n: int, batch: int, seed: int, kw, device):
    """The scorer for one pair; ``reference`` uses plain samples of both ends from the probe's own seeds."""
    from iced_coke.probing import MoCEProbe
    from iced_coke.scoring import ReferenceScorer

    if spec != "reference":
        return load_scorer(spec, device)
    ref = MoCEProbe(pipe, pair, None, T, num_images=n, batch_size=batch, seed=seed, cache=False, **kw)
    return ReferenceScorer(ref.generate(T), ref.generate(0))


# ------------------------------------------------------------------------------------------------ sample


@dataclass(frozen=True)
class SampleRun:
    """MoCE images: the first concept for --switch-step steps, then the full prompt."""

    pairs: Path | None = arg(None, help="pair file: official prompt.json, a Level-5 JSON file or JSONL")
    prompt: str = arg("", help='the full prompt when no --pairs, e.g. "A tea cup of iced coke."')
    first_prompt: str = arg("", help='the easily lost concept, e.g. "tea cup"')
    second_prompt: str = arg("", help='the other concept, e.g. "iced coke" (scoring only)')
    switch_step: int = arg(10, help="k in 0..steps: 0 = plain prompt, steps = first concept only", min=0)
    steps: int = arg(40, help="denoising steps T", min=1)
    num_images: int = arg(1, help="images per pair", min=1)
    model: str = arg(
        "tiny-sd", help="tiny-sd, tiny-sdxl (offline toys), a local diffusers folder or a hub id"
    )
    refiner: str | None = arg(
        None, help="SDXL refiner for the released base -> refiner hand-off (tiny-sdxl: any value)"
    )
    guidance_scale: float | None = arg(None, help="classifier-free guidance (default: the pipeline's)", min=0)
    size: int | None = arg(None, help="image height = width in pixels (default: the pipeline's)", min=8)


@dataclass
class SampleReport:
    files: list[str]
    switch_step: int
    steps: int
    unet_calls: int


def sample(run: SampleRun, ctx: RunContext | None = None) -> SampleReport:
    from iced_coke.moce import count_unet_calls, moce_sample
    from iced_coke.probing import _as_pil, batch_generator

    ctx = RunContext.of(ctx)
    dev, seed = ctx.torch_device(), ctx.seed
    progress = _progress(ctx)
    pairs = _pairs(run)
    if not 0 <= run.switch_step <= run.steps:
        raise RunError(f"--switch-step {run.switch_step} is outside 0..{run.steps}")
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    files = []
    with count_unet_calls(base, ref) as c:
        for pair in ctx.bar(pairs, desc="sample", unit="pair"):
            res = moce_sample(base, pair.prompt, pair.first_prompt, run.switch_step, run.steps,
                              generator=batch_generator(seed, 0), refiner=ref if run.switch_step else None,
                              num_images_per_prompt=run.num_images, **kw)  # fmt: skip
            for i, im in enumerate(_as_pil(res.images)):
                if ctx.out is not None:
                    p = ctx.output(f"{pair.slug}_k{run.switch_step}_{i}.png")
                    im.save(p)
                    files.append(str(p))
            if progress:
                progress(f"{pair.prompt}: {len(res.images)} image(s)")
    return SampleReport(files, run.switch_step, run.steps, c.calls)


# ------------------------------------------------------------------------------------------------ search


@dataclass(frozen=True)
class SearchRun:
    """Find each pair's switch step with the paper's search (stage-1 cache; resumable)."""

    pairs: Path | None = arg(None, help="pair file: official prompt.json, a Level-5 JSON file or JSONL")
    prompt: str = arg("", help='the full prompt when no --pairs, e.g. "A tea cup of iced coke."')
    first_prompt: str = arg("", help='the easily lost concept, e.g. "tea cup"')
    second_prompt: str = arg("", help='the other concept, e.g. "iced coke" (scoring only)')
    steps: int = arg(40, help="denoising steps T (paper: 40)", min=2)
    tau: float = arg(0.72, help="accept when both concept scores exceed tau")
    delta: float = arg(0.01, help="accept when |S1 - S2| < delta", min=0)
    mode: Literal["memo", "official"] = arg(
        "memo", help="memo: score each k once; official: the release's probing"
    )
    num_images: int = arg(64, help="images per probe (paper: 64)", min=1)
    batch_size: int = arg(4, help="images per pipeline call", min=1)
    clip: str = arg(
        "reference",
        help="scorer: open_clip:ARCH:WEIGHTS_FILE, a CLIP folder, or reference (offline stand-in)",
    )
    cache: bool = arg(True, help="re-run only stage 2 per probe from cached stage-1 latents")
    model: str = arg(
        "tiny-sd", help="tiny-sd, tiny-sdxl (offline toys), a local diffusers folder or a hub id"
    )
    refiner: str | None = arg(
        None, help="SDXL refiner for the released base -> refiner hand-off (tiny-sdxl: any value)"
    )
    guidance_scale: float | None = arg(None, help="classifier-free guidance (default: the pipeline's)", min=0)
    size: int | None = arg(None, help="image height = width in pixels (default: the pipeline's)", min=8)


@dataclass
class SearchReport:
    results: list[dict[str, Any]]
    unet_calls: int
    seconds: float
    results_file: str


def search(run: SearchRun, ctx: RunContext | None = None) -> SearchReport:
    """Resumable: pairs already in ``search.jsonl`` are not searched again."""
    from iced_coke.evaluation import contact_sheet
    from iced_coke.probing import MoCEProbe
    from iced_coke.search import MomentumState, search_bounds, search_switch_step

    ctx = RunContext.of(ctx)
    dev, seed = ctx.torch_device(), ctx.seed
    progress = _progress(ctx)
    pairs = _pairs(run)
    search_bounds(run.steps)
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    log = _state_dir(ctx) / "search.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["prompt"]] = rec
    state = MomentumState()  # shared by every pair only in official mode (the release's leak)
    results, calls, t0 = [], 0, time.perf_counter()
    for pair in ctx.bar(pairs, desc="search", unit="pair"):
        if pair.prompt in done:
            results.append(done[pair.prompt])
            continue
        scorer = _scorer_for(
            run.clip, base, ref, pair, run.steps, run.num_images, run.batch_size, seed, kw, dev
        )
        probe = MoCEProbe(base, pair, scorer, run.steps, refiner=ref, num_images=run.num_images,
                          batch_size=run.batch_size, seed=seed, cache=run.cache, **kw)  # fmt: skip
        res = search_switch_step(probe, run.steps, run.tau, run.delta, mode=run.mode, state=state)
        calls += probe.counts["unet_calls"]
        rec = {"prompt": pair.prompt, **res.to_json(), "unet_calls": probe.counts["unet_calls"],
               "cache_used": probe.cache_used}  # fmt: skip
        rows = {
            f"k={k} S1={s[0]:.3f} S2={s[1]:.3f}": probe.images[k][:8] for k, s in sorted(res.table.items())
        }
        sheet = ctx.output(f"{pair.slug}.png")
        rec["sheet"] = str(sheet)
        with open(log, "a", encoding="utf-8") as fh:  # the resume state: one line per finished pair
            fh.write(json.dumps(rec) + "\n")
        contact_sheet(rows, sheet, title=f"{pair.prompt}  k*={res.switch_step}")
        results.append(rec)
        if progress:
            progress(f"{pair.prompt}: k*={res.switch_step} probes={res.probes}")
    return SearchReport(results, calls, time.perf_counter() - t0, str(log))


# ------------------------------------------------------------------------------------------------ mine


@dataclass(frozen=True)
class MineRun:
    """Mine LC-Mis pairs with an LLM (paper phases 2-4), judged on the model's own images; resumable."""

    seeds: Path = arg(help="expert seed pairs (phase 1) with a 'pattern' field")
    llm: str = arg(
        "endpoint", help="endpoint (ICED_COKE_LLM_URL / _KEY / _MODEL) or a local chat-model folder"
    )
    clip: str = arg("reference", help="judge scorer: open_clip:ARCH:WEIGHTS_FILE or a CLIP folder")
    steps: int = arg(40, help="denoising steps of the judge's samples", min=1)
    num_images: int = arg(4, help="judge images per pair", min=1)
    pairs_per_pattern: int = arg(5, help="pairs the LLM proposes per pattern", min=1)
    new_patterns: int = arg(2, help="phase 3: new patterns to ask for", min=0)
    blends: int = arg(1, help="phase 4: pattern blends to ask for", min=0)
    min_level: int = arg(5, help="keep pairs judged at this level or worse (1..5)", min=1, max=5)
    model: str = arg("tiny-sd", help="tiny-sd, a local diffusers folder or a hub id")
    guidance_scale: float | None = arg(None, help="classifier-free guidance (default: the pipeline's)", min=0)


@dataclass
class MineReport:
    kept: int
    proposed: int
    unparseable: int
    llm_calls: int
    replayed: int
    pairs_file: str
    log_file: str


def mine(run: MineRun, ctx: RunContext | None = None) -> MineReport:
    from iced_coke.llm import OpenAICompatibleLLM, TransformersLLM
    from iced_coke.mining import ScoreJudge, mine_pairs
    from iced_coke.pairs import load_pairs, save_pairs
    from iced_coke.probing import MoCEProbe

    ctx = RunContext.of(ctx)
    dev, seed = ctx.torch_device(), ctx.seed
    progress = _progress(ctx)
    seeds = load_pairs(run.seeds)
    if run.llm == "endpoint":
        llm = OpenAICompatibleLLM()
        if not llm.configured:
            raise RunError(
                "no LLM endpoint: set ICED_COKE_LLM_URL (and ICED_COKE_LLM_KEY), or pass --llm LOCAL_MODEL_DIR"
            )
    elif Path(run.llm).is_dir():
        llm = TransformersLLM.from_pretrained(run.llm, device=str(dev))
    else:
        raise RunError(f"--llm {run.llm!r}: use 'endpoint' or a local chat-model folder")
    base, _ = load_pipelines(run.model, None, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, None)

    def plain(pair):
        return MoCEProbe(
            base, pair, None, run.steps, num_images=run.num_images, seed=seed, cache=False, **kw
        ).generate(0)

    if run.clip == "reference":
        raise RunError("mining needs a real judge: pass --clip open_clip:ARCH:WEIGHTS or a CLIP folder")
    judge = ScoreJudge(plain, load_scorer(run.clip, dev))
    state = _state_dir(ctx)
    res = mine_pairs(llm, seeds, judge, state / "mine.jsonl", pairs_per_pattern=run.pairs_per_pattern,
                     new_patterns=run.new_patterns, blends=run.blends, min_level=run.min_level, progress=progress)  # fmt: skip
    pf = save_pairs(res.kept, state / "mined_pairs.json")  # rebuilt from the log on every (resumed) run
    return MineReport(
        len(res.kept),
        res.proposed,
        res.unparseable,
        res.llm_calls,
        res.replayed,
        str(pf),
        str(state / "mine.jsonl"),
    )


# ------------------------------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class EvaluateRun:
    """Score plain sampling, prompt engineering, MoCE and Attend-and-Excite per pair; success rate; contact sheets."""

    pairs: Path = arg(help="pair file: official prompt.json, a Level-5 JSON file or JSONL")
    methods: str = arg("plain,prompt,moce", help="comma list of plain, prompt, moce, aae")
    search_results: Path | None = arg(None, help="search.jsonl from `search`: MoCE uses each pair's k*")
    switch_step: int = arg(10, help="MoCE's k for pairs without a search result", min=0)
    steps: int = arg(40, help="denoising steps T", min=1)
    threshold: float = arg(0.72, help="success: both concept scores above it")
    num_images: int = arg(4, help="images per pair and method", min=1)
    clip: str = arg("reference", help="scorer: open_clip:ARCH:WEIGHTS_FILE or a CLIP folder")
    model: str = arg(
        "tiny-sd", help="tiny-sd, tiny-sdxl (offline toys), a local diffusers folder or a hub id"
    )
    refiner: str | None = arg(
        None, help="SDXL refiner for the released base -> refiner hand-off (tiny-sdxl: any value)"
    )
    guidance_scale: float | None = arg(None, help="classifier-free guidance (default: the pipeline's)", min=0)
    size: int | None = arg(None, help="image height = width in pixels (default: the pipeline's)", min=8)


@dataclass
class EvaluateReport:
    success_rate: dict[str, float]
    mean_scores: dict[str, tuple[float, float]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    sheets: str = ""


def evaluate(run: EvaluateRun, ctx: RunContext | None = None) -> EvaluateReport:
    from iced_coke.baselines import attend_and_excite_pipeline, concept_token_indices, engineered_prompt
    from iced_coke.evaluation import evaluate_methods
    from iced_coke.pairs import ConceptPair, load_pairs
    from iced_coke.probing import MoCEProbe, _as_pil, batch_generator

    ctx = RunContext.of(ctx)
    dev, seed = ctx.torch_device(), ctx.seed
    progress = _progress(ctx)
    pairs = load_pairs(run.pairs)
    names = [m.strip() for m in run.methods.split(",") if m.strip()]
    bad = [m for m in names if m not in ("plain", "prompt", "moce", "aae")]
    if bad or not names:
        raise RunError(f"unknown method(s) {bad}; choose from plain, prompt, moce, aae")
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    ks: dict[str, int] = {}
    if run.search_results is not None:
        if not Path(run.search_results).is_file():
            raise RunError(f"search results {run.search_results} not found")
        for line in Path(run.search_results).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                ks[rec["prompt"]] = int(rec["switch_step"])

    def probe(pair):
        return MoCEProbe(
            base, pair, None, run.steps, refiner=ref, num_images=run.num_images, seed=seed, cache=False, **kw
        )

    methods: dict[str, Callable] = {}
    if "plain" in names:
        methods["plain"] = lambda pair: probe(pair).generate(0)
    if "prompt" in names:

        def engineered(pair):
            p2 = ConceptPair(
                engineered_prompt(pair),
                pair.first_prompt,
                pair.first_describe,
                pair.second_prompt,
                pair.second_describe,
            )
            return probe(p2).generate(0)

        methods["prompt"] = engineered
    if "moce" in names:
        methods["moce"] = lambda pair: probe(pair).generate(ks.get(pair.prompt, run.switch_step))
    if "aae" in names:
        if ref is not None or hasattr(base, "text_encoder_2"):
            raise RunError("Attend-and-Excite runs on SD 1.x/2.x pipelines only")
        ae = attend_and_excite_pipeline(base)
        extra = {"attn_res": (8, 8)} if run.model == "tiny-sd" else {}

        def aae(pair):
            res = ae(prompt=pair.prompt, token_indices=concept_token_indices(ae.tokenizer, pair),
                     num_inference_steps=run.steps, generator=batch_generator(seed, 0),
                     num_images_per_prompt=run.num_images, **kw, **extra)  # fmt: skip
            return _as_pil(res.images)

        methods["aae"] = aae
    if run.clip == "reference":
        raise RunError("evaluation needs a real scorer: pass --clip open_clip:ARCH:WEIGHTS or a CLIP folder")
    scorer = load_scorer(run.clip, dev)
    sheets = (lambda pair: ctx.output(f"{pair.slug}.png")) if ctx.out is not None else None
    rep = evaluate_methods(
        ctx.bar(pairs, desc="evaluate", unit="pair"),
        methods,
        scorer,
        run.threshold,
        sheets=sheets,
        progress=progress,
    )
    j = rep.to_json()
    if ctx.out is not None:
        atomic_write_json(ctx.output("evaluation.json"), j)
    return EvaluateReport(j["success_rate"], rep.mean_scores(), j["rows"], str(ctx.out or ""))


# ------------------------------------------------------------------------------------------------ bench


@dataclass(frozen=True)
class BenchRun:
    """UNet evaluations and wall-clock of one full search: stage-1 cache vs re-running both stages per probe,
    memoised vs official probing (same pipeline, scorer and seeds); ratios in one run."""

    model: str = arg("tiny-sd", help="tiny-sd, tiny-sdxl, a local diffusers folder or a hub id")
    refiner: str | None = arg(None, help="SDXL refiner (hand-off mode)")
    steps: int = arg(40, help="denoising steps T", min=2)
    num_images: int = arg(2, help="images per probe", min=1)
    batch_size: int = arg(2, help="images per pipeline call", min=1)
    crossing: float = arg(
        0.3, help="the mock scorer's crossing as a fraction of T (drives the probe path)", gt=0, lt=0.5
    )
    tau: float = arg(0.72, help="accept when both scores exceed tau")
    delta: float = arg(0.01, help="accept when |S1 - S2| < delta", min=0)
    guidance_scale: float | None = arg(None, help="classifier-free guidance", min=0)
    size: int | None = arg(None, help="image height = width", min=8)


@dataclass
class BenchReport:
    rows: list[dict[str, Any]]
    ratios: dict[str, float]
    formula: dict[str, Any]
    device: str


def bench(run: BenchRun, ctx: RunContext | None = None) -> BenchReport:
    """Each probe really generates its images (and counts UNet calls); the scores come from a monotone mock with
    its crossing at ``crossing·T`` so that the probe path is the one a real search takes on a pair whose k* lies
    there (the tiny pipelines' images carry no concept)."""
    from gen_common.device import synchronize
    from iced_coke.pairs import ConceptPair
    from iced_coke.probing import MoCEProbe
    from iced_coke.search import search_switch_step

    ctx = RunContext.of(ctx)
    dev, seed = ctx.torch_device(), ctx.seed
    progress = _progress(ctx)
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    pair = ConceptPair(
        "A tea cup of iced coke.", "tea cup", "Small ceramic vessel.", "iced coke", "Dark liquid with ice."
    )
    c = (
        run.crossing * run.steps + 0.4
    )  # between two steps: no probe meets |S1 - S2| < delta, the search runs out

    def mock(k: int) -> tuple[float, float]:
        return 0.6 + 0.013 * (k - c), 0.6 - 0.013 * (k - c)

    rows = []
    settings = (("memo+cache", True, "memo"), ("memo, rerun both stages", False, "memo"),
                ("official+cache", True, "official"), ("official, rerun both stages", False, "official"))  # fmt: skip
    for name, cache, mode in settings:
        probe = MoCEProbe(base, pair, None, run.steps, refiner=ref, num_images=run.num_images,
                          batch_size=run.batch_size, seed=seed, cache=cache, keep_images=False, **kw)  # fmt: skip

        def score(k: int, probe=probe) -> tuple[float, float]:
            probe.generate(k)
            return mock(k)

        synchronize(dev)
        t0 = time.perf_counter()
        res = search_switch_step(score, run.steps, run.tau, run.delta, mode=mode)
        synchronize(dev)
        rows.append({"setting": name, "switch_step": res.switch_step, "probes": res.probes, "n_probes": len(res.probes),
                     "unet_calls": probe.counts["unet_calls"], "seconds": time.perf_counter() - t0,
                     "cache_used": probe.cache_used})  # fmt: skip
        if progress:
            progress(
                f"{name}: probes {res.probes}, {rows[-1]['unet_calls']} UNet calls, {rows[-1]['seconds']:.2f} s"
            )
    r = {row["setting"]: row for row in rows}
    T, nb = run.steps, math.ceil(run.num_images / run.batch_size)
    probes = r["memo+cache"]["probes"]
    stage1 = T // 2
    formula = {
        "batches": nb,
        "cache_expected": nb * (stage1 + sum(T - k for k in probes)),
        "rerun_expected": nb * len(probes) * T,
        "official_cache_expected": nb * (stage1 + sum(T - k for k in r["official+cache"]["probes"])),
        "note": "cache: T/2 stage-1 steps once + sum(T - k_i) per batch; rerun: probes x T per batch",
    }
    ratios = {
        "unet_rerun_over_cache": r["memo, rerun both stages"]["unet_calls"]
        / max(1, r["memo+cache"]["unet_calls"]),
        "time_rerun_over_cache": r["memo, rerun both stages"]["seconds"]
        / max(1e-9, r["memo+cache"]["seconds"]),
        "unet_official_over_memo": r["official+cache"]["unet_calls"] / max(1, r["memo+cache"]["unet_calls"]),
        "time_official_over_memo": r["official+cache"]["seconds"] / max(1e-9, r["memo+cache"]["seconds"]),
        "unet_official_rerun_over_memo_cache": r["official, rerun both stages"]["unet_calls"]
        / max(1, r["memo+cache"]["unet_calls"]),
    }
    rep = BenchReport(rows, ratios, formula, str(dev))
    if ctx.out is not None:
        atomic_write_json(ctx.output("bench.json"), asdict(rep))
    return rep
