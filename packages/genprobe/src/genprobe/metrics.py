"""Classification metrics of a distribution classifier: accuracy, per-class accuracy, confusion matrix, and
(for two sources) average precision, the detection literature's headline number (CNNDetection, UnivFD)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Metrics", "average_precision", "compute_metrics", "confusion_matrix", "wilson_interval"]


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C[i, j]`` = number of images of true class ``i`` predicted as ``j``."""
    labels, preds = labels.reshape(-1).long().cpu(), preds.reshape(-1).long().cpu()
    flat = labels * num_classes + preds
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def average_precision(labels: torch.Tensor, scores: torch.Tensor) -> float:
    """AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, highest first (the step-wise area
    under the precision-recall curve, no interpolation: the definition scikit-learn uses). Positives:
    ``labels == 1``. NaN when there is no positive."""
    y = labels.reshape(-1).double().cpu()
    s = scores.reshape(-1).double().cpu()
    if y.sum() == 0:
        return float("nan")
    order = torch.argsort(s, descending=True, stable=True)
    y, s = y[order], s[order]
    # The last index of each run of equal scores: one threshold per distinct score.
    last = torch.cat([torch.nonzero(s[1:] != s[:-1]).reshape(-1), torch.tensor([s.numel() - 1])])
    tps = torch.cumsum(y, 0)[last]
    precision = tps / (last + 1).double()
    recall = tps / tps[-1]
    prev = torch.cat([torch.zeros(1, dtype=torch.float64), recall[:-1]])
    return float(((recall - prev) * precision).sum())


def wilson_interval(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (95% for the default ``z``).

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``: unlike the normal approximation it stays inside
    [0, 1] and is sensible at 0 or n successes, which is where a probe's accuracies often are. Whether a filtered
    classifier is "at chance" is then whether 1/K lies inside the interval.
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got {correct} of {n}")
    p, z2 = correct / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5
    # The bounds at 0 and n successes are exactly 0 and 1 (rounding would put them a hair inside).
    lo = 0.0 if correct == 0 else max(0.0, centre - half)
    hi = 1.0 if correct == n else min(1.0, centre + half)
    return (lo, hi)


@dataclass
class Metrics:
    accuracy: float
    balanced_accuracy: float
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]
    class_names: list[str]
    n: int
    average_precision: float | None = None  # two classes only: class 1 is the positive
    loss: float | None = None
    accuracy_ci95: tuple[float, float] | None = None  # Wilson interval over the n test images
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "accuracy": self.accuracy,
            "accuracy_ci95": list(self.accuracy_ci95) if self.accuracy_ci95 is not None else None,
            "balanced_accuracy": self.balanced_accuracy,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion,
            "class_names": self.class_names,
            "n": self.n,
        }
        if self.average_precision is not None:
            out["average_precision"] = self.average_precision
        if self.loss is not None:
            out["loss"] = self.loss
        out.update(self.extra)
        return out


def compute_metrics(
    labels: torch.Tensor, logits: torch.Tensor, class_names: list[str] | None = None
) -> Metrics:
    """Metrics of (N,) integer labels and (N, K) logits (or probabilities)."""
    if logits.ndim != 2 or logits.shape[0] != labels.numel():
        raise ValueError(f"expected (N, K) logits for N={labels.numel()} labels, got {tuple(logits.shape)}")
    k = logits.shape[1]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    logits = logits.float().cpu()
    labels = labels.reshape(-1).long().cpu()
    preds = logits.argmax(dim=1)
    cm = confusion_matrix(labels, preds, k)
    support = cm.sum(dim=1)
    per = {names[i]: (float(cm[i, i] / support[i]) if support[i] > 0 else float("nan")) for i in range(k)}
    present = [v for i, v in enumerate(per.values()) if support[i] > 0]
    ap = None
    if k == 2:
        ap = average_precision(labels == 1, torch.softmax(logits, dim=1)[:, 1])
    loss = float(torch.nn.functional.cross_entropy(logits, labels))
    correct = int((preds == labels).sum())
    return Metrics(
        accuracy=float((preds == labels).double().mean()),
        balanced_accuracy=sum(present) / len(present),
        per_class_accuracy=per,
        confusion=cm.tolist(),
        class_names=names,
        n=int(labels.numel()),
        average_precision=ap,
        loss=loss,
        accuracy_ci95=wilson_interval(correct, int(labels.numel())),
    )
