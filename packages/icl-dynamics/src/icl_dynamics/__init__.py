"""Mesa-optimization in autoregressively trained one-layer linear transformers: training dynamics vs theory."""

__version__ = "0.1.0"

__all__: list[str] = []
