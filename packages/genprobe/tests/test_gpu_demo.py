"""GPU paths (AMP, channels_last, filters on CUDA) and the tour's demo (opt-in: slow)."""

import dataclasses
from pathlib import Path

import pytest
import torch
from genprobe.data import SplitConfig
from genprobe.experiments import run_probe
from genprobe.filters import canny_edges, gaussian_lowpass, highpass, lowpass, sobel_edges
from genprobe.probe import ProbeConfig
from genprobe.toy import ToyConfig, toy_pair

from gen_common.testing import assert_close


@pytest.mark.gpu
def test_filters_on_cuda_match_the_cpu():
    x = torch.rand(4, 3, 32, 32)
    for fn in (
        lambda t: lowpass(t, 5),
        lambda t: highpass(t, 5),
        lambda t: gaussian_lowpass(t, 3),
        sobel_edges,
    ):
        assert_close(fn(x.cuda()).cpu(), fn(x), atol=1e-5)
    assert (canny_edges(x.cuda()).cpu() != canny_edges(x)).float().mean() < 0.01


@pytest.mark.gpu
def test_amp_channels_last_training_on_cuda_solves_the_toy():
    a, b = toy_pair("hf", 400, ToyConfig(size=32, channels=3))
    cfg = ProbeConfig(arch="resnet18", filter="highpass:10", steps=200, eval_every=50, lr=1e-3, patience=2)
    run = run_probe([a, b], cfg, SplitConfig(test_per_class=100, val_per_class=50), device="cuda")
    assert run.classifier.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert run.test.accuracy > 0.9
    low = run_probe(
        [a, b], dataclasses.replace(cfg, filter="lowpass:10"), SplitConfig(test_per_class=100), device="cuda"
    )
    assert low.test.accuracy < 0.65


@pytest.mark.slow
def test_demo_runs_offline_and_reports_the_expected_pattern(tmp_path):
    from genprobe.demo import run_demo

    from gen_common.demo import DemoContext

    res = run_demo(DemoContext(Path(tmp_path), torch.device("cpu")))
    m = res.metrics
    assert m["toy_hf_highpass"] > 0.95
    assert m["toy_lf_lowpass"] > 0.95
    assert abs(m["toy_hf_lowpass"] - 0.5) < 0.15
    assert abs(m["toy_lf_highpass"] - 0.5) < 0.15
    assert all(Path(f).is_file() for f in res.figures)
