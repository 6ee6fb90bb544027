"""The tour's demo, offline on a tiny random Stable Diffusion pipeline:

1. the same-seed identities of MoCE (k = 0 is plain sampling of the prompt, k = T of the first concept, stage 2
   resumed from the cached stage-1 latent equals the uninterrupted run), as max |difference| (0 = bit-exact);
2. the switch-step search with a monotone stand-in scorer (`ReferenceScorer`) on real probes: its trace, memo vs
   official probing, and UNet evaluations with the stage-1 cache against the formula T/2 + Σ(T − k_i);
3. the released probe sequences for a monotone mock at T = 40 and T = 30 (where the release raises KeyError);
4. a contact sheet of every probed k.
"""

from __future__ import annotations

import time

import torch

from gen_common.demo import DemoContext, DemoResult, Table

PROMPT, FIRST = "A tea cup of iced coke.", "tea cup"


def run_demo(ctx: DemoContext) -> DemoResult:
    from gen_common.testing.diffusers_tiny import tiny_sd_pipeline
    from iced_coke.evaluation import contact_sheet
    from iced_coke.moce import moce_sample, resume_stage2, stage1_latents
    from iced_coke.pairs import ConceptPair
    from iced_coke.probing import MoCEProbe
    from iced_coke.scoring import ReferenceScorer
    from iced_coke.search import search_bounds, search_switch_step

    t_start = time.perf_counter()
    large = ctx.scale == "large"
    T = 20 if large else 10
    n = 8 if large else 2
    pipe = tiny_sd_pipeline(seed=0).to(ctx.device)
    kw = {"height": 32, "width": 32, "guidance_scale": 3.0, "output_type": "latent"}

    def g():
        return torch.Generator("cpu").manual_seed(ctx.seed)

    # 1. identities
    def plain(p):
        return pipe(prompt=p, num_inference_steps=T, generator=g(), **kw).images

    k = 3
    cache = stage1_latents(pipe, FIRST, T, T // 2, generator=g(), **kw)
    ident = {
        "k=0 vs plain prompt": (
            moce_sample(pipe, PROMPT, FIRST, 0, T, generator=g(), **kw).images - plain(PROMPT)
        ),
        "k=T vs plain first concept": (
            moce_sample(pipe, PROMPT, FIRST, T, T, generator=g(), **kw).images - plain(FIRST)
        ),
        f"resume k={k} vs one run": (
            resume_stage2(pipe, cache, PROMPT, k, **kw).images
            - moce_sample(pipe, PROMPT, FIRST, k, T, generator=g(), **kw).images
        ),
    }
    ident_rows = [[name, float(d.abs().max())] for name, d in ident.items()]

    # 2. the search on real probes
    pair = ConceptPair(
        PROMPT, FIRST, "Small, handle-equipped ceramic vessel.", "iced coke", "A dark brown liquid with ice."
    )
    pk = {"height": 32, "width": 32, "guidance_scale": 3.0}
    refs = MoCEProbe(pipe, pair, None, T, num_images=n, batch_size=n, seed=ctx.seed, cache=False, **pk)
    scorer = ReferenceScorer(refs.generate(T), refs.generate(0))
    runs = {}
    for mode in ("memo", "official"):
        probe = MoCEProbe(pipe, pair, scorer, T, num_images=n, batch_size=n, seed=ctx.seed, **pk)
        res = search_switch_step(probe, T, mode=mode)
        runs[mode] = (res, probe)
    res, probe = runs["memo"]
    expected = T // 2 + sum(T - q for q in res.probes)
    trace_rows = [[q, *res.table[q], abs(res.table[q][0] - res.table[q][1])] for q in res.probes]

    # 3. released probe sequences on a monotone mock (pure arithmetic)
    mock_rows = []
    for TT in (40, 30):
        lo, hi, _ = search_bounds(TT)
        for c in (lo + 2, (lo + hi) // 2 + 1, hi - 1):
            r = search_switch_step(
                lambda q, c=c: (0.6 + 0.013 * (q - c), 0.6 - 0.013 * (q - c)), TT, mode="official"
            )
            m = search_switch_step(lambda q, c=c: (0.6 + 0.013 * (q - c), 0.6 - 0.013 * (q - c)), TT)
            mock_rows.append(
                [TT, c, " ".join(map(str, r.probes)), " ".join(map(str, m.probes)), m.switch_step]
            )

    # 4. contact sheet
    rows = {
        f"k={q}  S1={res.table[q][0]:.3f} S2={res.table[q][1]:.3f}": probe.images[q]
        for q in sorted(res.table)
    }
    rows = {"k=0 (plain prompt)": refs.generate(0), **rows, f"k={T} (first concept only)": refs.generate(T)}
    sheet = contact_sheet(
        rows, ctx.path("iced_coke_search_sheet.png"), title=f"{PROMPT}  k*={res.switch_step}", cell=96
    )

    metrics = {
        "max_abs_identity_error": max(r[1] for r in ident_rows),
        "switch_step": res.switch_step,
        "accepted": res.accepted,
        "probes_memo": res.probes,
        "probes_official": runs["official"][0].probes,
        "unet_calls_cached": probe.counts["unet_calls"],
        "unet_calls_expected": expected,
        "unet_calls_rerun_equivalent": len(res.probes) * T,
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    return DemoResult(
        title="iced-coke: MoCE and the switch-step search (tiny offline SD)",
        summary=(
            f"MoCE identities hold bit-exactly (max |Δ| = {metrics['max_abs_identity_error']}); the search on a "
            f"monotone stand-in scorer probed {res.probes} and chose k* = {res.switch_step}, with "
            f"{metrics['unet_calls_cached']} UNet calls using the stage-1 cache (formula {expected}) instead of "
            f"{metrics['unet_calls_rerun_equivalent']} re-running both stages."
        ),
        metrics=metrics,
        tables=[
            Table("Same-seed identities (max |difference| of latents)", ["identity", "max |Δ|"], ident_rows),
            Table(f"Search trace (T = {T}, memo mode)", ["k", "S1", "S2", "|S1 - S2|"], trace_rows),
            Table(
                "Released probe sequence vs memo on a monotone mock (crossing c)",
                ["T", "c", "official probes", "memo probes", "k*"],
                mock_rows,
            ),
        ],
        figures=[sheet],
        headline={
            "claim": "MoCE (the easily lost concept first, the full prompt from the searched switch step) fixes "
            "latent concept misalignment at sampling time; the stage-1 cache makes the search cheap",
            "paper": "MoCE raises the success rate on the Level-5 concept pairs; the search needs few probes",
            "measured": f"identities bit-exact (max |Δ| = {metrics['max_abs_identity_error']}); "
            f"{len(res.probes)} probes, k* = {res.switch_step}; {metrics['unet_calls_cached']} UNet calls with "
            f"the cache (formula {expected}) vs {metrics['unet_calls_rerun_equivalent']} re-running both stages",
            "reproduces": None,
            "reason": "the sampling identities and the search's cost formula are checked exactly; the success "
            "rates need SD/SDXL weights, a real CLIP and the Level-5 pairs (a monotone stand-in scorer here)",
        },
        captions={
            sheet.name: "Images at the probed switch steps: k = 0 is the plain prompt, k = T the first "
            "concept alone."
        },
    )
