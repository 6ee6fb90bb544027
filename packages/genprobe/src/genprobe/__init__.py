"""Distribution classifiers that tell generated images from real ones, with frequency and edge probes.

Implements the probe of "Are Images Indistinguishable to Humans Also Indistinguishable to Classifiers?"
(You et al., arXiv 2405.18029): classifiers whose classes are image sources, trained on raw, low-pass, high-pass
or edge-map images, with pairwise / multiclass / frequency-sweep / data-scaling experiments.
"""

from genprobe.data import (
    ImageSource,
    LabeledSet,
    Preprocess,
    Split,
    SplitConfig,
    balanced_split,
    split_sets,
    write_image_folder,
)
from genprobe.experiments import (
    Report,
    data_scaling,
    edges,
    frequency_sweep,
    multiclass,
    pairwise,
    robustness,
    run_probe,
    toy_probe,
)
from genprobe.filters import (
    ImageFilter,
    bandpass,
    canny_edges,
    gaussian_highpass,
    gaussian_lowpass,
    highpass,
    jpeg_perturb,
    lowpass,
    parse_filter,
    resize_perturb,
    sobel_edges,
)
from genprobe.metrics import Metrics, average_precision, compute_metrics
from genprobe.models import ClassifierConfig, DistributionClassifier, LinearProbe, SmallCNN
from genprobe.probe import ProbeConfig, ProbeRun, evaluate, train_probe
from genprobe.spectrum import radial_power_spectrum
from genprobe.toy import ToyConfig, toy_pair

__version__ = "0.1.0"

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
    "Split",
    "SplitConfig",
    "ToyConfig",
    "average_precision",
    "balanced_split",
    "bandpass",
    "canny_edges",
    "compute_metrics",
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
