"""Shared fixtures: exactly symmetrised data sets on which phase averages are exact."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from icl_dynamics.data import ar_sequences


def symmetrized_sequences(x1_base: torch.Tensor, T: int) -> torch.Tensor:
    """Every base x₁ under all coordinate sign flips, all coordinate permutations and all phase vectors on the
    grid (2π k / N)^d with N = 3(T−1) + 1.

    The loss and its gradients are trigonometric polynomials in the phases with degree at most 3(T−1) per
    coordinate, so averaging over this grid equals the exact expectation over uniform phases; with the sign
    flips and permutations the empirical law of x₁ is sign-symmetric and exchangeable. On such a data set the
    paper's claims hold exactly, with the base sample's moments.
    """
    _n0, d = x1_base.shape
    N = 3 * (T - 1) + 1
    signs = torch.tensor(list(itertools.product([1.0, -1.0], repeat=d)), dtype=torch.float64)
    perms = list(itertools.permutations(range(d)))
    grid = torch.tensor(list(itertools.product(range(N), repeat=d)), dtype=torch.float64) * (2 * math.pi / N)
    firsts = torch.cat([(x1_base[:, list(p)][:, None, :] * signs[None]).reshape(-1, d) for p in perms])
    x1 = firsts.repeat_interleave(grid.shape[0], dim=0)
    theta = grid.repeat(firsts.shape[0], 1)
    return ar_sequences(x1, theta, T, dtype="complex128")


@pytest.fixture
def symmetrize():
    return symmetrized_sequences
