"""Radial power spectrum (Parseval, sinusoid placement) and the classification metrics."""

import math

import pytest
import torch
from genprobe.metrics import average_precision, compute_metrics, confusion_matrix, wilson_interval
from genprobe.spectrum import radial_power_spectrum

from gen_common.testing import assert_close


def test_parseval_the_bins_add_up_to_the_image_energy():
    x = torch.randn(3, 2, 16, 20, generator=torch.Generator().manual_seed(0))
    _, p = radial_power_spectrum(x, reduce="sum")
    assert p.shape[:2] == (3, 2)
    assert_close(p.sum(-1), (x.double() ** 2).sum((-2, -1)), rtol=1e-10)
    _, p2 = radial_power_spectrum(x, reduce="sum", bin_width=2.5)
    assert_close(p2.sum(-1), p.sum(-1), rtol=1e-10)


@pytest.mark.parametrize(("fx", "fy"), [(3, 4), (0, 6), (2, 2), (8, 0)])
def test_a_sinusoid_puts_its_power_in_the_bin_of_its_radius(fx, fy):
    n = 16
    v, u = torch.meshgrid(
        torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij"
    )
    x = torch.cos(2 * math.pi * (fx * u + fy * v) / n)
    radii, p = radial_power_spectrum(x, reduce="sum")
    k = round(math.hypot(fx, fy))
    assert float(radii[k]) == k
    assert_close(p[k], (x**2).sum(), rtol=1e-10)  # all of it
    assert float(p.sum() - p[k]) < 1e-12
    _, pm = radial_power_spectrum(x, reduce="mean")
    assert float(pm[k]) < float(p[k])  # the mean spreads it over the bin's frequencies


def test_white_noise_has_a_flat_mean_spectrum():
    x = torch.randn(400, 32, 32, generator=torch.Generator().manual_seed(1))
    _, p = radial_power_spectrum(x, reduce="mean")
    flat = p.mean(0)[1:16]
    assert_close(flat, torch.ones_like(flat), rtol=0.1)  # E|X_k|^2 / (HW) = sigma^2 = 1


def test_average_precision_matches_a_hand_computed_curve():
    # Sorted scores 0.9(+) 0.8(-) 0.7(+) 0.6(+) 0.5(-): P@hits = 1, 2/3, 3/4 -> AP = (1 + 2/3 + 3/4) / 3.
    labels = torch.tensor([1, 0, 1, 1, 0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    assert average_precision(labels, scores) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert average_precision(labels, labels.float()) == pytest.approx(1.0)
    # Tied scores form one threshold: precision at that threshold is the pooled one.
    assert average_precision(torch.tensor([1, 0]), torch.tensor([0.5, 0.5])) == pytest.approx(0.5)
    assert math.isnan(average_precision(torch.zeros(3), torch.rand(3)))


def test_confusion_and_per_class_accuracy():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 1, 0]), 3).float()
    cm = confusion_matrix(labels, logits.argmax(1), 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    m = compute_metrics(labels, logits, ["a", "b", "c"])
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.per_class_accuracy == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0})
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m.average_precision is None
    two = compute_metrics(torch.tensor([0, 1]), torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    assert two.accuracy == 1.0
    assert two.average_precision == pytest.approx(1.0)


def test_wilson_interval_hand_values_and_edges():
    # 8 of 10: p = 0.8, z^2 = 3.8415; centre (0.8 + 0.19208) / 1.38415 = 0.71681, half 0.22657.
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=2e-4)
    assert hi == pytest.approx(0.9433, abs=2e-4)
    assert wilson_interval(0, 20)[0] == 0.0
    assert wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 20)[1] == pytest.approx(3.8415 / (20 + 3.8415), rel=1e-4)  # z^2 / (n + z^2)
    lo, hi = wilson_interval(150, 300)  # symmetric about 1/2, close to the normal +-1.96 sqrt(p q / n)
    assert (lo + hi) / 2 == pytest.approx(0.5)
    assert hi - 0.5 == pytest.approx(1.96 * math.sqrt(0.25 / 300), rel=0.01)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    m = compute_metrics(torch.tensor([0, 1, 1, 0]), torch.tensor([[1.0, 0], [0, 1], [1, 0], [1, 0]]))
    assert m.accuracy_ci95 == pytest.approx(wilson_interval(3, 4))
    assert m.as_dict()["accuracy_ci95"] == pytest.approx(list(wilson_interval(3, 4)))
