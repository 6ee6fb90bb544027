import csv

import numpy as np
import pytest
from mdm_scaling.compute import mean_sequence_length, plan_run, training_flops
from mdm_scaling.scaling import (
    compute_gap,
    fit_scaling_laws,
    group_budgets,
    isoflop_minimum,
    plot_frontier,
    plot_isoflops,
    read_runs,
    write_runs,
)

BUDGETS = np.geomspace(6e18, 1e20, 5)  # the paper's IsoFLOP budgets
# Constants read off the paper's figure (reference notes).
TRUTH = {"mdm": (50.2, 0.0625, 0.63, 0.02), "arm": (45.6, 0.0642, 0.63, 0.05)}


def parabola_runs(seed=0, noise=0.002):
    """IsoFLOP curves with known minima: L = A·C^-α + a·(ln N − ln N*)², N* = k·C^β, plus noise, on a size grid
    centred on each budget's optimum (as IsoFLOP sweeps are laid out)."""
    rng = np.random.default_rng(seed)
    rows = []
    for arch, (A, alpha, beta, k) in TRUTH.items():
        for c in BUDGETS:
            n_opt = k * c**beta
            for f in np.geomspace(0.25, 4, 7):
                n = n_opt * f
                loss = A * c**-alpha + 0.04 * np.log(f) ** 2 + noise * rng.standard_normal()
                rows.append({"arch": arch, "params": n, "tokens": c / (6 * n), "flops": c, "loss": loss})
    return rows


def test_fit_recovers_synthetic_constants_within_5_percent():
    fits = fit_scaling_laws(parabola_runs())
    for arch, (A, alpha, beta, k) in TRUTH.items():
        f = fits[arch]
        assert pytest.approx(A, rel=0.05) == f.A
        assert f.alpha == pytest.approx(alpha, rel=0.05)
        assert f.beta == pytest.approx(beta, rel=0.05)
        assert f.size_law(1e19) == pytest.approx(k * 1e19**beta, rel=0.05)  # N* itself (k alone is ill-posed)
        assert all(p.bracketed for p in f.points)
        assert f.to_dict()["bracketed"] == f.to_dict()["budgets"] == len(BUDGETS)


def test_fit_recovers_chinchilla_form_exponents_on_a_fixed_grid():
    """L(N, D) = a/N^p + b/D^q with E = 0 has L*(C) ∝ C^(−pq/(p+q)) and N*(C) ∝ C^(q/(p+q)) exactly; the parabola
    vertices on one fixed size grid for every budget must find them."""
    p, q = 0.34, 0.28
    budgets = np.geomspace(1e18, 1e20, 4)
    grid = np.geomspace(1e6, 1e10, 41)
    rows = [
        {
            "arch": "x",
            "params": n,
            "tokens": c / (6 * n),
            "flops": c,
            "budget": c,
            "loss": 400 / n**p + 410 / (c / (6 * n)) ** q,
        }
        for c in budgets
        for n in grid
        if 0.05 < n / (c ** (q / (p + q))) < 20
    ]
    f = fit_scaling_laws(rows)["x"]
    assert f.alpha == pytest.approx(p * q / (p + q), rel=0.05)
    assert f.beta == pytest.approx(q / (p + q), rel=0.05)


def test_compute_gap_closed_form():
    fits = fit_scaling_laws(parabola_runs(noise=0.0))
    a, m = fits["arm"], fits["mdm"]
    c = 1e19
    g = compute_gap(a, m, c)
    # MDM at g·C reaches the ARM's optimal loss at C.
    assert m.A * (g * c) ** -m.alpha == pytest.approx(a.A * c**-a.alpha, rel=1e-9)
    assert g > 1
    # Equal exponents: the gap is (A_m/A_a)^(1/α) at any budget.
    same = type(m)("m", A=2.0, alpha=0.05, k=1.0, beta=0.5)
    ref = type(m)("a", A=1.5, alpha=0.05, k=1.0, beta=0.5)
    assert compute_gap(ref, same, 1e18) == pytest.approx((2.0 / 1.5) ** 20, rel=1e-9)


def test_unbracketed_curve_falls_back_to_best_run():
    pt = isoflop_minimum([1e3, 2e3, 4e3], [3.0, 2.5, 2.2], 1e9)  # still falling: minimum beyond the grid
    assert not pt.bracketed
    assert pt.n_opt == pytest.approx(4e3)
    assert pt.loss_opt == 2.2
    pt = isoflop_minimum([1e3, 2e3, 4e3], [3.0, 2.5, 2.8], 1e9)
    assert pt.bracketed
    assert 1e3 < pt.n_opt < 4e3
    assert pt.loss_opt < 2.5
    with pytest.raises(ValueError, match="3 distinct"):
        isoflop_minimum([1e3, 2e3], [1.0, 2.0], 1e9)
    # a fit over curves that all still fall at the largest size says so
    falling = [
        {"arch": "x", "params": n, "tokens": c / (6 * n), "flops": c, "loss": 3.0 / c**0.01 - 0.1 * i}
        for c in (1e9, 1e10)
        for i, n in enumerate((1e3, 2e3, 4e3))
    ]
    f = fit_scaling_laws(falling)["x"]
    assert f.bracketed == 0
    assert f.to_dict()["budgets"] == 2


def test_grouping_without_budget_column():
    rows = [{"flops": f, "loss": 1.0} for f in (1.0e9, 1.05e9, 0.97e9, 3e9, 3.1e9, 1e10)]
    groups = group_budgets(rows)
    assert [len(g) for g in groups.values()] == [3, 2, 1]


def test_csv_round_trip_and_errors(tmp_path):
    rows = parabola_runs()
    path = write_runs(rows, tmp_path / "runs.csv")
    back = read_runs(path)
    assert len(back) == len(rows)
    assert back[0]["arch"] == "mdm"
    assert back[0]["loss"] == pytest.approx(rows[0]["loss"])
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows([["arch", "params", "loss"], ["mdm", "1", "2"]])
    with pytest.raises(ValueError, match="tokens"):
        read_runs(bad)
    with pytest.raises(FileNotFoundError):
        read_runs(tmp_path / "nope.csv")
    zero = tmp_path / "zero.csv"
    with zero.open("w", newline="") as fh:
        csv.writer(fh).writerows(
            [["arch", "params", "tokens", "flops", "loss"], ["mdm", "0", "1", "1e9", "2"]]
        )
    with pytest.raises(ValueError, match="line 2: params must be positive"):
        read_runs(zero)
    with pytest.raises(ValueError, match="must be positive"):
        fit_scaling_laws([{**r, "loss": -1.0} for r in rows])
    with pytest.raises(ValueError, match="at least 2 budgets"):
        fit_scaling_laws([r for r in rows if r["flops"] == BUDGETS[0]])


def test_plots_written(tmp_path):
    rows = parabola_runs()
    fits = fit_scaling_laws(rows)
    assert plot_isoflops(rows, fits, tmp_path / "iso.png").stat().st_size > 1000
    assert plot_frontier(fits, tmp_path / "front.png").stat().st_size > 1000


def test_compute_accounting():
    assert training_flops(1e6, 2e9) == 1.2e16
    # The official train_mdm_rl.py budgets stochastic length with this mean (ssl ratio 0.01, context 2048).
    assert mean_sequence_length(2048, 0.01) == pytest.approx(2048 * 0.99 + 2049 * 0.5 * 0.01)
    plan = plan_run(1e12, 1000, 8, 64)
    assert plan.steps == round(1e12 / (6 * 1000 * 8 * 64))
    assert plan.flops == pytest.approx(6 * 1000 * plan.tokens)
