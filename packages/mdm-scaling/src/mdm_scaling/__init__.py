"""Masked diffusion language models at scale: matched MDM/ARM training, IsoFLOP scaling laws, unsupervised CFG, zero-shot scoring."""

__version__ = "0.1.0"

__all__: list[str] = []
