"""The tour's demo: Analytic-Init on exact toys, the TimeNoise distribution, and a tiny SVD run with/without the fix.

1. KL(q(x_M) ‖ start) across M for a 4-d Gaussian and a 1-d mixture under the lvdm/SD noise schedule (VP) and
   across σ_max (VE, SVD): N(0, I) vs Analytic-Init, exact (no sampling).
2. TimeNoise: quantile bands of β_s over t for the SVD and DynamiCrafter presets, and VideoCrafter1's μ_max = 4
   (official, a bug) vs 1 (intended).
3. A tiny offline Stable Video Diffusion pipeline (random weights): latent statistics from synthetic clips, then the
   stock sampler (σ_max 700, N(0, σ²+1)) vs the fix (σ_max 100 + Analytic-Init), frames and motion scores.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from gen_common.cli import RunContext
from gen_common.demo import DemoContext, DemoResult, Table
from gen_common.plotting import new_figure, save_figure
from i2v_leak.presets import get_preset
from i2v_leak.runs import CompareRun, Generation, StatsRun
from i2v_leak.runs import compare as compare_command
from i2v_leak.runs import stats as stats_command
from i2v_leak.timenoise import TimeNoise
from i2v_leak.toy import GaussianToy, MixtureToy, scaled_linear_alphas_cumprod, zero_terminal_snr


def _kl_curves(ms: list[int], alphas: torch.Tensor) -> dict[str, list[tuple[float, float]]]:
    """For each toy: (KL to N(0, I), KL to Analytic-Init) at the first timestep M − 1 of each start M."""
    toys = {"gaussian-4d": GaussianToy.random(4, seed=0), "mixture-1d": MixtureToy.default()}
    out: dict[str, list[tuple[float, float]]] = {}
    for name, toy in toys.items():
        d = toy.d if isinstance(toy, GaussianToy) else 1
        rows = []
        for M in ms:
            a = float(alphas[M - 1])
            std = toy.kl_vp(a, torch.zeros(d, dtype=torch.float64), 1.0)
            mu, var = toy.analytic_vp(a)
            rows.append((float(std), float(toy.kl_vp(a, mu, var))))
        out[name] = rows
    return out


def _plot_kl(ctx: DemoContext, ms, curves, sigmas, ve_curves):
    fig, axes = new_figure(1, 2, size=(10, 3.6))
    for (name, rows), color in zip(curves.items(), ("C0", "C1")):
        axes[0].plot(ms, [r[0] for r in rows], color=color, ls="--", label=f"{name}: N(0, I)")
        axes[0].plot(ms, [r[1] for r in rows], color=color, label=f"{name}: Analytic-Init")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("start step M (T = 1000)")
    axes[0].set_ylabel("KL(q(x_M) ‖ start)")
    axes[0].set_title("VP / DDPM (SD scaled-linear betas)")
    axes[0].legend(fontsize=7)
    for (name, rows), color in zip(ve_curves.items(), ("C0", "C1")):
        axes[1].plot(
            sigmas, [r[0] for r in rows], color=color, ls="--", label=f"{name}: N(0, σ²+1) (stock SVD)"
        )
        # below ~1e-12 the mixture's quadrature entropy is at its rounding floor: not plotted
        keep = [(s, r[1]) for s, r in zip(sigmas, rows) if r[1] > 1e-12]
        axes[1].plot([k[0] for k in keep], [k[1] for k in keep], color=color, label=f"{name}: Analytic-Init")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("σ_max (SVD: stock 700, CIL 100)")
    axes[1].set_title("VE / EDM")
    axes[1].legend(fontsize=7)
    return save_figure(fig, ctx.path("kl_vs_start.png"))


def _plot_timenoise(ctx: DemoContext):
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    fig, axes = new_figure(1, 3, size=(13, 3.6))
    for ax, (label, tn) in zip(
        axes[:2],
        (
            ("SVD (β_m 15, a 5)", get_preset("svd").timenoise()),
            ("DynamiCrafter (β_m 100, a 5)", get_preset("dynamicrafter").timenoise()),
        ),
    ):
        ax.fill_between(t, tn.quantile(0.05, t), tn.quantile(0.95, t), alpha=0.25, label="5–95%")
        ax.fill_between(t, tn.quantile(0.25, t), tn.quantile(0.75, t), alpha=0.4, label="25–75%")
        ax.plot(t, tn.median(t), color="k", label="median β_m·sigmoid(μ(t))")
        ax.set_xlabel("t (normalised diffusion time)")
        ax.set_ylabel("β_s")
        ax.set_title(label)
        ax.legend(fontsize=7)
    vc = get_preset("videocrafter1")
    for mu_max, ls in ((1.0, "-"), (4.0, "--")):
        tn = TimeNoise(vc.beta_m, vc.a, mu_max)
        axes[2].plot(t, tn.median(t), ls=ls, label=f"median, μ_max={mu_max:g}")
        axes[2].fill_between(t, tn.quantile(0.05, t), tn.quantile(0.95, t), alpha=0.15)
    axes[2].set_title("VideoCrafter1: μ_max 1 (intended) vs 4 (official)")
    axes[2].set_xlabel("t")
    axes[2].set_ylabel("β_s (median, 5–95%)")
    axes[2].legend(fontsize=7)
    return save_figure(fig, ctx.path("timenoise.png"))


# The demo's presets for the tiny offline SVD: the same commands as `i2v-leak stats` and `i2v-leak compare`.
PRESETS = {
    "small": (
        StatsRun(videos="synthetic", num_synthetic=16),
        CompareRun(image="synthetic", generation=Generation(steps=4, fps=3, motion_bucket_id=20)),
    ),
    "large": (
        StatsRun(videos="synthetic", num_synthetic=64),
        CompareRun(image="synthetic", generation=Generation(steps=25, fps=3, motion_bucket_id=20)),
    ),
}


def _tiny_svd(ctx: DemoContext) -> dict:
    """Latent statistics from synthetic clips, then stock (σ_max 700) vs the fix (σ_max 100 + Analytic-Init)."""
    stats_run, compare_run = PRESETS["large" if ctx.scale == "large" else "small"]
    run_ctx = RunContext(
        device=str(ctx.device), seed=ctx.seed, out=ctx.out_dir, overwrite=True, progress=ctx.progress
    )
    t0 = time.perf_counter()
    stats = stats_command(stats_run, run_ctx)
    t_stats = time.perf_counter() - t0
    generation = dataclasses.replace(compare_run.generation, stats=stats.stats)
    cmp = compare_command(dataclasses.replace(compare_run, generation=generation), run_ctx)
    return {
        "figure": Path(cmp.png),
        "tr_cov_over_d": stats.tr_cov_over_d,
        "mean_abs": stats.mean_abs_mean,
        "motion_base": cmp.motion_score["baseline"],
        "motion_fixed": cmp.motion_score["fixed"],
        "seconds_stats": t_stats,
        "seconds_base": cmp.seconds["baseline"],
        "seconds_fixed": cmp.seconds["fixed"],
    }


def run_demo(ctx: DemoContext) -> DemoResult:
    large = ctx.scale == "large"
    T = 1000
    alphas = scaled_linear_alphas_cumprod(T)
    ms = list(range(10, T + 1, 10 if not large else 2))
    curves = _kl_curves(ms, alphas)
    sigmas = torch.logspace(-1, math.log10(700.0), 60 if not large else 200, dtype=torch.float64).tolist()
    ve_curves = {}
    for name, toy in (("gaussian-4d", GaussianToy.random(4, seed=0)), ("mixture-1d", MixtureToy.default())):
        d = toy.d if isinstance(toy, GaussianToy) else 1
        rows = []
        for s in sigmas:
            std = toy.kl_ve(s, torch.zeros(d, dtype=torch.float64), s * s + 1.0)
            mu, var = toy.analytic_ve(s)
            rows.append((float(std), float(toy.kl_ve(s, mu, var))))
        ve_curves[name] = rows
    fig_kl = _plot_kl(ctx, ms, curves, sigmas, ve_curves)
    fig_tn = _plot_timenoise(ctx)

    # zero terminal SNR: Analytic-Init at M = T is N(0, I) exactly
    zt = zero_terminal_snr(alphas)
    g = GaussianToy.random(4, seed=0)
    mu_T, var_T = g.analytic_vp(float(zt[-1]))

    tiny = _tiny_svd(ctx)

    table_ms = [1000, 960, 940, 900, 860, 820]
    rows = []
    for M in table_ms:
        i = ms.index(M)
        rows.append([M, *[v for name in curves for v in curves[name][i]]])
    kl_table = Table(
        "KL(q(x_M) ‖ start), exact, SD scaled-linear schedule",
        ["M", "gauss: N(0,I)", "gauss: Analytic", "mixture: N(0,I)", "mixture: Analytic"],
        rows,
    )
    tn = get_preset("svd").timenoise()
    tn_rows = [
        [t, float(tn.quantile(0.05, t)), float(tn.median(t)), float(tn.quantile(0.95, t))]
        for t in (0.0, 0.5, 0.8, 0.9, 1.0)
    ]
    tn_table = Table(
        "TimeNoise β_s quantiles, SVD preset (β_m 15, a 5, μ_max 1)", ["t", "5%", "median", "95%"], tn_rows
    )
    svd_table = Table(
        "tiny SVD (random weights, 32×32, 2 frames)",
        ["run", "motion score (0–255)", "seconds"],
        [
            ["stock (σ_max 700)", tiny["motion_base"], tiny["seconds_base"]],
            ["fix (σ_max 100 + Analytic-Init)", tiny["motion_fixed"], tiny["seconds_fixed"]],
        ],
    )
    worst_gap = min(r[0] - r[1] for name in curves for r in curves[name])
    metrics = {
        "kl_gauss_M940_standard": rows[2][1],
        "kl_gauss_M940_analytic": rows[2][2],
        "kl_mixture_M940_standard": rows[2][3],
        "kl_mixture_M940_analytic": rows[2][4],
        "min_kl_improvement_over_M": worst_gap,
        "zero_snr_analytic_mean_abs": float(mu_T.abs().max()),
        "zero_snr_analytic_var": var_T,
        "tiny_svd_tr_cov_over_d": tiny["tr_cov_over_d"],
        "tiny_svd_motion_stock": tiny["motion_base"],
        "tiny_svd_motion_fixed": tiny["motion_fixed"],
    }
    summary = (
        f"Analytic-Init lowers the exact KL to q(x_M) for every start M on both toys (smallest gain "
        f"{worst_gap:.3g} nats); at M = 940 the 4-d Gaussian goes from {rows[2][1]:.3g} to {rows[2][2]:.3g} nats. "
        f"With zero terminal SNR it is N(0, I) at M = T. TimeNoise keeps β_s small until late t (SVD median at "
        f"t=0.5: {float(tn.median(0.5)):.2f}, at t=1: {float(tn.median(1.0)):.2f}). The tiny offline SVD runs end "
        f"to end with and without the fix (random weights: the frames show plumbing, not quality)."
    )
    return DemoResult(
        title="i2v-leak: early start, Analytic-Init and TimeNoise",
        summary=summary,
        metrics=metrics,
        tables=[kl_table, tn_table, svd_table],
        figures=[fig_kl, fig_tn, tiny["figure"]],
        headline={
            "claim": "starting generation earlier (M < T) from Analytic-Init, a start that matches q(x_M), "
            "narrows the train–test gap behind conditional image leakage, giving more motion",
            "paper": "Analytic-Init is the KL-optimal Gaussian start at M; on DynamiCrafter / VideoCrafter1 / SVD "
            "it gives more motion at matched image alignment (M = 940; SVD σ_max 100)",
            "measured": f"exact KL at M = 940, 4-d Gaussian: {rows[2][1]:.3g} → {rows[2][2]:.3g} nats; lower at "
            f"every M on both toys (smallest gain {worst_gap:.3g} nats)",
            "reproduces": worst_gap > 0,
            "reason": "the KL claim is checked exactly on toys; the motion gain needs the real video models "
            "(the tiny SVD has random weights: plumbing only)",
        },
        captions={
            "kl_vs_start.png": "Exact KL from each start to the true q(x_M), VP by start step M (left) and VE "
            "by σ_max (right): Analytic-Init (solid) lies below the standard start (dashed) everywhere.",
            "timenoise.png": "TimeNoise: the noise scale β_s on the condition stays small until late t.",
            "tiny_svd.png": "Tiny offline SVD with random weights, stock vs fix: end-to-end plumbing, not quality.",
        },
    )
