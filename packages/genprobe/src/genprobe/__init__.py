"""Distribution classifiers that tell generated images from real ones, with frequency and edge probes."""

__version__ = "0.1.0"

__all__: list[str] = []
