"""Distribution classifiers that tell generated images from real ones, with frequency and edge probes.

Implements the probe of "Are Images Indistinguishable to Humans Also Indistinguishable to Classifiers?"
(You et al., arXiv 2405.18029): classifiers whose classes are image sources, trained on raw, low-pass, high-pass
or edge-map images, with pairwise / multiclass / frequency-sweep / data-scaling experiments.
"""

from __future__ import annotations

from gen_common.lazy import lazy_exports

__version__ = "0.1.0"

# Names are imported on first use (PEP 562): `genprobe --help` and `import genprobe.runs` do not import torch.
_LAZY = {
    "ClassifierConfig": "models",
    "DistributionClassifier": "models",
    "ImageFilter": "filters",
    "ImageSource": "data",
    "LabeledSet": "data",
    "LinearProbe": "models",
    "Metrics": "metrics",
    "Preprocess": "data",
    "ProbeConfig": "config",
    "ProbeRun": "probe",
    "Report": "experiments",
    "SmallCNN": "models",
    "SmallSplitWarning": "config",
    "Split": "data",
    "SplitConfig": "data",
    "ToyConfig": "toy",
    "average_precision": "metrics",
    "balanced_split": "data",
    "bandpass": "filters",
    "canny_edges": "filters",
    "compute_metrics": "metrics",
    "data_mixing": "mixing",
    "data_scaling": "experiments",
    "edges": "experiments",
    "evaluate": "probe",
    "frequency_sweep": "experiments",
    "gaussian_highpass": "filters",
    "gaussian_lowpass": "filters",
    "highpass": "filters",
    "jpeg_perturb": "filters",
    "lowpass": "filters",
    "multiclass": "experiments",
    "pairwise": "experiments",
    "parse_filter": "filters",
    "radial_power_spectrum": "spectrum",
    "resize_perturb": "filters",
    "robustness": "experiments",
    "run_probe": "experiments",
    "sobel_edges": "filters",
    "split_sets": "data",
    "toy_pair": "toy",
    "toy_probe": "experiments",
    "train_probe": "probe",
    "write_image_folder": "data",
}

__all__ = [
    "ClassifierConfig",
    "DistributionClassifier",
    "ImageFilter",
    "ImageSource",
    "LabeledSet",
    "LinearProbe",
    "Metrics",
    "Preprocess",
    "ProbeConfig",
    "ProbeRun",
    "Report",
    "SmallCNN",
    "SmallSplitWarning",
    "Split",
    "SplitConfig",
    "ToyConfig",
    "average_precision",
    "balanced_split",
    "bandpass",
    "canny_edges",
    "compute_metrics",
    "data_mixing",
    "data_scaling",
    "edges",
    "evaluate",
    "frequency_sweep",
    "gaussian_highpass",
    "gaussian_lowpass",
    "highpass",
    "jpeg_perturb",
    "lowpass",
    "multiclass",
    "pairwise",
    "parse_filter",
    "radial_power_spectrum",
    "resize_perturb",
    "robustness",
    "run_probe",
    "sobel_edges",
    "split_sets",
    "toy_pair",
    "toy_probe",
    "train_probe",
    "write_image_folder",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
