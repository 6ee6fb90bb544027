"""Reparameterized absorbing discrete diffusion (RADD): time-independent masked model, DCE likelihoods, cached samplers."""

__version__ = "0.1.0"

__all__: list[str] = []
