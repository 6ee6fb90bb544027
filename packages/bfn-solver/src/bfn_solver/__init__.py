"""Bayesian flow networks as SDEs, and the fast BFN solvers for continuous and discrete data."""

__version__ = "0.1.0"

__all__: list[str] = []
