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
    """A tiny SDXL base + img2img refiner sharing its components (`gen_common.testing.sdxl_tiny` when present)."""
    try:
        from gen_common.testing import sdxl_tiny  # type: ignore[attr-defined]

        base = sdxl_tiny.tiny_sdxl_pipeline(seed=seed)
        return base, sdxl_tiny.tiny_sdxl_img2img_pipeline(seed=seed, from_base=base)
    except ImportError:
        from iced_coke._tiny import tiny_sdxl_pipelines

        return tiny_sdxl_pipelines(seed)


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


def _out(out: Path | None, default: str) -> Path:
    p = Path(out) if out is not None else Path(default)
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
    """MoCE images: the first concept for ``switch_step`` steps, then the full prompt."""

    pairs: Path | None = None  # a prompt.json-style pair file (or use --prompt/--first-prompt)
    prompt: str = ""  # the full prompt, e.g. "A tea cup of iced coke."
    first_prompt: str = ""  # the easily lost concept, e.g. "tea cup"
    second_prompt: str = ""
    switch_step: int = 10  # k in 0..steps; 0 = plain prompt, steps = first concept only
    steps: int = 40
    model: str = "tiny-sd"
    refiner: str | None = None  # SDXL refiner for the released base -> refiner hand-off
    num_images: int = 1
    guidance_scale: float | None = None
    size: int | None = None


@dataclass
class SampleReport:
    files: list[str]
    switch_step: int
    steps: int
    unet_calls: int


def sample(
    run: SampleRun, *, device="auto", seed: int = 0, out: Path | None = None, progress: Progress = None
) -> SampleReport:
    from gen_common.device import resolve_device
    from iced_coke.moce import count_unet_calls, moce_sample
    from iced_coke.probing import _as_pil, batch_generator

    dev = resolve_device(device)
    pairs = _pairs(run)
    if not 0 <= run.switch_step <= run.steps:
        raise RunError(f"--switch-step {run.switch_step} is outside 0..{run.steps}")
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    odir = _out(out, "iced-coke-samples")
    files = []
    with count_unet_calls(base, ref) as c:
        for pair in pairs:
            res = moce_sample(base, pair.prompt, pair.first_prompt, run.switch_step, run.steps,
                              generator=batch_generator(seed, 0), refiner=ref if run.switch_step else None,
                              num_images_per_prompt=run.num_images, **kw)  # fmt: skip
            for i, im in enumerate(_as_pil(res.images)):
                p = odir / f"{pair.slug}_k{run.switch_step}_{i}.png"
                im.save(p)
                files.append(str(p))
            if progress:
                progress(f"{pair.prompt}: {len(res.images)} image(s)")
    return SampleReport(files, run.switch_step, run.steps, c.calls)


# ------------------------------------------------------------------------------------------------ search


@dataclass(frozen=True)
class SearchRun:
    """The switch-step search per pair (paper Sec. 4.2), with the stage-1 cache."""

    pairs: Path | None = None
    prompt: str = ""
    first_prompt: str = ""
    second_prompt: str = ""
    steps: int = 40
    tau: float = 0.72
    delta: float = 0.01
    mode: Literal["memo", "official"] = "memo"
    num_images: int = 64  # images per probe (paper: 64)
    batch_size: int = 4
    model: str = "tiny-sd"
    refiner: str | None = None
    clip: str = "reference"
    cache: bool = True  # re-run only stage 2 per probe from cached stage-1 latents
    guidance_scale: float | None = None
    size: int | None = None


@dataclass
class SearchReport:
    results: list[dict[str, Any]]
    unet_calls: int
    seconds: float
    results_file: str


def search(
    run: SearchRun, *, device="auto", seed: int = 0, out: Path | None = None, progress: Progress = None
) -> SearchReport:
    """Resumable: pairs already in ``search.jsonl`` are not searched again."""
    from gen_common.device import resolve_device
    from iced_coke.evaluation import contact_sheet
    from iced_coke.probing import MoCEProbe
    from iced_coke.search import MomentumState, search_bounds, search_switch_step

    dev = resolve_device(device)
    pairs = _pairs(run)
    search_bounds(run.steps)
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    odir = _out(out, "iced-coke-search")
    log = odir / "search.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["prompt"]] = rec
    state = MomentumState()  # shared by every pair only in official mode (the release's leak)
    results, calls, t0 = [], 0, time.perf_counter()
    for pair in pairs:
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
        rec["sheet"] = str(
            contact_sheet(rows, odir / f"{pair.slug}.png", title=f"{pair.prompt}  k*={res.switch_step}")
        )
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        results.append(rec)
        if progress:
            progress(f"{pair.prompt}: k*={res.switch_step} probes={res.probes}")
    return SearchReport(results, calls, time.perf_counter() - t0, str(log))


# ------------------------------------------------------------------------------------------------ mine


@dataclass(frozen=True)
class MineRun:
    """Mine LC-Mis pairs with an LLM (paper Sec. 3 phases 2-4), judged on the model's own images."""

    seeds: Path  # expert seed pairs (phase 1), with a "pattern" field
    llm: str = (
        "endpoint"  # endpoint (ICED_COKE_LLM_URL/_KEY/_MODEL) or a local transformers chat-model folder
    )
    model: str = "tiny-sd"
    clip: str = "reference"
    steps: int = 40
    num_images: int = 4
    pairs_per_pattern: int = 5
    new_patterns: int = 2
    blends: int = 1
    min_level: int = 5
    guidance_scale: float | None = None


@dataclass
class MineReport:
    kept: int
    proposed: int
    unparseable: int
    llm_calls: int
    replayed: int
    pairs_file: str
    log_file: str


def mine(
    run: MineRun, *, device="auto", seed: int = 0, out: Path | None = None, progress: Progress = None
) -> MineReport:
    from gen_common.device import resolve_device
    from iced_coke.llm import OpenAICompatibleLLM, TransformersLLM
    from iced_coke.mining import ScoreJudge, mine_pairs
    from iced_coke.pairs import load_pairs, save_pairs
    from iced_coke.probing import MoCEProbe

    dev = resolve_device(device)
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
    odir = _out(out, "iced-coke-mine")
    res = mine_pairs(llm, seeds, judge, odir / "mine.jsonl", pairs_per_pattern=run.pairs_per_pattern,
                     new_patterns=run.new_patterns, blends=run.blends, min_level=run.min_level, progress=progress)  # fmt: skip
    pf = save_pairs(res.kept, odir / "mined_pairs.json")
    return MineReport(
        len(res.kept),
        res.proposed,
        res.unparseable,
        res.llm_calls,
        res.replayed,
        str(pf),
        str(odir / "mine.jsonl"),
    )


# ------------------------------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class EvaluateRun:
    """Score methods per pair: plain, prompt engineering, MoCE at a fixed or searched switch step, Attend-and-Excite."""

    pairs: Path
    methods: str = "plain,prompt,moce"  # comma list of plain, prompt, moce, aae
    search_results: Path | None = None  # search.jsonl from `search`: MoCE uses each pair's k*
    switch_step: int = 10  # MoCE's k when a pair has no search result
    steps: int = 40
    threshold: float = 0.72
    num_images: int = 4
    model: str = "tiny-sd"
    refiner: str | None = None
    clip: str = "reference"
    guidance_scale: float | None = None
    size: int | None = None


@dataclass
class EvaluateReport:
    success_rate: dict[str, float]
    mean_scores: dict[str, tuple[float, float]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    sheets: str = ""


def evaluate(
    run: EvaluateRun, *, device="auto", seed: int = 0, out: Path | None = None, progress: Progress = None
) -> EvaluateReport:
    from gen_common.device import resolve_device
    from iced_coke.baselines import attend_and_excite_pipeline, concept_token_indices, engineered_prompt
    from iced_coke.evaluation import evaluate_methods
    from iced_coke.pairs import ConceptPair, load_pairs
    from iced_coke.probing import MoCEProbe, _as_pil, batch_generator

    dev = resolve_device(device)
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
    odir = _out(out, "iced-coke-eval")
    rep = evaluate_methods(pairs, methods, scorer, run.threshold, sheet_dir=odir, progress=progress)
    j = rep.to_json()
    (odir / "evaluation.json").write_text(json.dumps(j, indent=2), encoding="utf-8")
    return EvaluateReport(j["success_rate"], rep.mean_scores(), j["rows"], str(odir))


# ------------------------------------------------------------------------------------------------ bench


@dataclass(frozen=True)
class BenchRun:
    """UNet evaluations and wall-clock of one full search: stage-1 cache vs re-running both stages per probe, and
    memoised vs official probing (same pipeline, same scorer, same seeds)."""

    model: str = "tiny-sd"
    refiner: str | None = None
    steps: int = 20
    num_images: int = 2
    batch_size: int = 2
    tau: float = 0.72
    delta: float = 0.01
    guidance_scale: float | None = 3.0
    size: int | None = None


@dataclass
class BenchReport:
    rows: list[dict[str, Any]]
    ratios: dict[str, float]
    formula: dict[str, Any]
    device: str


def bench(
    run: BenchRun, *, device="auto", seed: int = 0, out: Path | None = None, progress: Progress = None
) -> BenchReport:
    from gen_common.device import resolve_device, synchronize
    from iced_coke.pairs import ConceptPair
    from iced_coke.probing import MoCEProbe
    from iced_coke.search import search_switch_step

    dev = resolve_device(device)
    base, ref = load_pipelines(run.model, run.refiner, dev)
    kw = _pipe_kwargs(run.model, run.guidance_scale, run.size)
    pair = ConceptPair(
        "A tea cup of iced coke.", "tea cup", "Small ceramic vessel.", "iced coke", "Dark liquid with ice."
    )
    scorer = _scorer_for(
        "reference", base, ref, pair, run.steps, run.num_images, run.batch_size, seed, kw, dev
    )
    rows = []
    for name, cache, mode in (("memo+cache", True, "memo"), ("memo, rerun both stages", False, "memo"),
                              ("official+cache", True, "official"), ("official, rerun both stages", False, "official")):  # fmt: skip
        probe = MoCEProbe(base, pair, scorer, run.steps, refiner=ref, num_images=run.num_images,
                          batch_size=run.batch_size, seed=seed, cache=cache, keep_images=False, **kw)  # fmt: skip
        synchronize(dev)
        t0 = time.perf_counter()
        res = search_switch_step(probe, run.steps, run.tau, run.delta, mode=mode)
        synchronize(dev)
        rows.append({"setting": name, "switch_step": res.switch_step, "probes": res.probes, "n_probes": len(res.probes),
                     "unet_calls": probe.counts["unet_calls"], "seconds": time.perf_counter() - t0,
                     "cache_used": probe.cache_used})  # fmt: skip
        if progress:
            progress(f"{name}: {rows[-1]['unet_calls']} UNet calls, {rows[-1]['seconds']:.2f} s")
    r = {row["setting"]: row for row in rows}
    T, nb = run.steps, math.ceil(run.num_images / run.batch_size)
    probes = r["memo+cache"]["probes"]
    formula = {
        "batches": nb,
        "cache_expected_per_batch": T // 2 + sum(T - k for k in probes if k >= 1),
        "rerun_expected_per_batch": len(probes) * T,
        "note": "cache: T/2 stage-1 steps once + sum(T - k_i) stage-2 steps; rerun: probes x T",
    }
    ratios = {
        "unet_rerun_over_cache": r["memo, rerun both stages"]["unet_calls"]
        / max(1, r["memo+cache"]["unet_calls"]),
        "time_rerun_over_cache": r["memo, rerun both stages"]["seconds"]
        / max(1e-9, r["memo+cache"]["seconds"]),
        "unet_official_over_memo": r["official+cache"]["unet_calls"] / max(1, r["memo+cache"]["unet_calls"]),
        "time_official_over_memo": r["official+cache"]["seconds"] / max(1e-9, r["memo+cache"]["seconds"]),
    }
    rep = BenchReport(rows, ratios, formula, str(dev))
    if out is not None:
        odir = _out(out, "iced-coke-bench")
        (odir / "bench.json").write_text(json.dumps(asdict(rep), indent=2), encoding="utf-8")
    return rep
