"""The issue's performance goal, measured exactly (no Monte Carlo floor) on the 1-D Gaussian: BFN-Solver++2
needs at least 10x fewer NFE than the original BFN sampler at 1000 steps for the same output-law error."""

import math

import pytest
from bfn_solver.bench import nfe_to_reach, run_exact_gaussian_bench
from bfn_solver.order import fit_order


def test_exact_bench_speedup_of_the_second_order_solvers():
    c = run_exact_gaussian_bench(methods=["solver++2", "sde_solver++2", "solver++1"], nfes=(25, 50, 100, 200))
    assert c.reference_nfe == 1000
    assert 0 < c.reference_quality < 0.01
    assert c.nfe_to_match["solver++2"] <= 100  # >= 10x (measured: 77 NFE, 13x)
    assert c.nfe_to_match["sde_solver++2"] <= 60  # measured: 41 NFE, 24x
    assert c.nfe_to_match["solver++1"] is None  # first order: not within 200 NFE
    # the exact errors decay at the methods' orders (no noise to hide behind); on the official grid, uniform in
    # t, ++2 reaches order 2 only slowly (1.6 between 25 and 200 NFE; 2.0 on a log-SNR grid)
    n, e = zip(*c.curves["solver++2"])
    assert 1.45 < fit_order(n, e) < 2.3
    n, e = zip(*c.curves["solver++1"])
    assert fit_order(n, e) == pytest.approx(1.0, abs=0.1)


def test_nfe_to_reach_interpolates_log_log():
    curve = [(10, 1e-2), (100, 1e-4)]
    assert nfe_to_reach(curve, 1e-3) == pytest.approx(math.sqrt(10 * 100))
    assert nfe_to_reach(curve, 1e-5) is None
    assert nfe_to_reach(curve, 1.0) == 10
