"""Conditional-image leakage fixes for image-to-video diffusion: early start, Analytic-Init, TimeNoise."""

__version__ = "0.1.0"

__all__: list[str] = []
