"""Mixing generated images into real training data vs replacing real data with them (arXiv 2405.18029's data
experiment), measured the paper's way: by how well a distribution classifier tells the result from real images.

A generative model is refitted on training sets of fixed sizes:

- ``real``: ``n`` real images;
- ``mix k``: the ``n`` real images plus ``k`` generated ones (generated data added);
- ``replace k``: ``n - k`` real images plus ``k`` generated ones (real data swapped for generated, same total).

Each refitted model draws ``num_samples`` images, and a distribution classifier is trained to tell them from as
many held-out real images (never seen by the refitted model). Its test accuracy is the distance the paper reads:
1/2 means indistinguishable, and ``2 * accuracy - 1`` is a lower bound on the total-variation distance between the
two distributions (the balanced Bayes accuracy is ``(1 + TV) / 2``).

The answer is known by construction for an ideal generator (``fit="empirical"``: its samples follow its training
distribution exactly; here drawn from its training set without replacement). If a fraction ``f`` of its training
images are generated and those are perfectly separable from real ones, the refitted model's samples are a
``(1 - f, f)`` mixture of real and generated, and the best classifier's accuracy is ``(1 + f) / 2``: 1/2 for
``real``, ``(1 + k / (n + k)) / 2`` for ``mix k``, ``(1 + k / n) / 2`` for ``replace k``. Mixing dilutes the
generated data, replacing does not: the paper's finding that mixing generated images into real data does less
harm than replacing real data with them. Any other generator is given as ``fit(images, num_samples, generator)``
(e.g. fine-tune your diffusion model on ``images`` and sample from it); ``fit="gaussian"`` is a cheap one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gen_common.seeding import make_generator, randn, split_seed
from genprobe.data import ImageSource, SplitConfig
from genprobe.experiments import Report, _summary, _train_all
from genprobe.probe import ProbeConfig

__all__ = ["FITS", "FitFn", "data_mixing", "empirical_generator", "gaussian_generator", "ideal_accuracy"]

# fit(training images (N, C, H, W), num_samples, generator) -> (num_samples, C, H, W) samples of the refitted model
FitFn = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def empirical_generator(images: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """The ideal generator: samples that follow its training distribution exactly (drawn from the training set
    without replacement, so that no image is both in the classifier's training and test split)."""
    if num_samples > images.shape[0]:
        raise ValueError(
            f"the empirical generator draws without replacement: {num_samples} samples from {images.shape[0]} "
            "training images; lower the number of samples"
        )
    return images[torch.randperm(images.shape[0], generator=generator)[:num_samples]]


def gaussian_generator(images: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """A Gaussian with the training images' mean and (full, per-pixel) sample covariance:
    ``mu + D^T z / sqrt(N - 1)``, D the centred images, z ~ N(0, I_N) (no C*H*W square matrix is formed)."""
    n = images.shape[0]
    if n < 2:
        raise ValueError("the gaussian generator needs at least 2 training images")
    x = images.double().reshape(n, -1)
    mu = x.mean(0)
    z = randn((num_samples, n), generator, dtype=torch.float64)
    out = mu + z @ (x - mu) / (n - 1) ** 0.5
    return out.reshape(num_samples, *images.shape[1:]).float()


FITS: dict[str, FitFn] = {"empirical": empirical_generator, "gaussian": gaussian_generator}


def ideal_accuracy(real: int, generated: int) -> float:
    """Accuracy of the best classifier between real images and an ideal generator refitted on ``real`` real and
    ``generated`` perfectly separable generated images: ``(1 + f) / 2``, ``f`` the generated fraction."""
    return 0.5 * (1.0 + generated / (real + generated))


def data_mixing(
    real: ImageSource,
    generated: ImageSource,
    n: int,
    ks: Sequence[int],
    config: ProbeConfig | None = None,
    split: SplitConfig | None = None,
    *,
    num_samples: int | None = None,
    fit: str | FitFn = "empirical",
    seed: int = 0,
    device: torch.device | str = "auto",
    progress: bool | None = None,
) -> Report:
    """Real-only vs mixed (``n`` real + ``k`` generated) vs replaced (``n - k`` real + ``k`` generated) training
    sets of a refitted generator, each scored by a distribution classifier: its samples vs held-out real images.

    Args:
        real: the real images; the first ``n`` train the refitted generator, the next ``num_samples`` are the
            classifier's held-out real class.
        generated: the generated images mixed in (the first ``max(ks)`` are used).
        n: real training images of the refitted generator (its training set size in ``real`` and ``replace``).
        ks: generated images per setting; each gives a ``mix k`` and a ``replace k`` setting (``k <= n``).
        split: how each classifier's images (``num_samples`` per class) are split into train / val / test.
        num_samples: samples drawn from each refitted generator (default ``n``).
        fit: ``"empirical"`` (the ideal generator: the known answer), ``"gaussian"``, or your own
            ``fit(images, num_samples, generator) -> samples``.

    Returns a report with one row per setting: real and generated training images, generated fraction, test
    accuracy with its 95% interval, ``2 * accuracy - 1`` (a lower bound on the total-variation distance), and
    the ideal generator's accuracy ``(1 + f) / 2`` for comparison.
    """
    cfg = config or ProbeConfig()
    fit_fn = FITS.get(fit) if isinstance(fit, str) else fit
    if fit_fn is None:
        raise ValueError(f"unknown fit {fit!r}: use one of {', '.join(FITS)} or pass a function")
    ks = sorted({int(k) for k in ks})
    m = int(num_samples) if num_samples is not None else int(n)
    if n < 1 or m < 2:
        raise ValueError(f"need n >= 1 real training images and at least 2 samples, got n={n}, samples={m}")
    if not ks or ks[0] < 1 or ks[-1] > n:
        raise ValueError(
            f"generated counts k must be in 1..n={n} (replace keeps n - k real images), got {ks}"
        )
    if len(real) < n + m:
        raise ValueError(
            f"source {real.name!r} has {len(real)} images but needs {n + m}: {n} to refit the generator on and "
            f"{m} held out for the classifier; lower n or the number of samples"
        )
    if len(generated) < ks[-1]:
        raise ValueError(f"source {generated.name!r} has {len(generated)} images, the largest k is {ks[-1]}")
    if real.image_shape != generated.image_shape:
        raise ValueError(f"real images are {real.image_shape}, generated ones {generated.image_shape}")
    settings = [("real", n, 0)]
    for k in ks:
        settings += [(f"mix {k}", n, k), (f"replace {k}", n - k, k)]
    real_train = real.get(torch.arange(n))
    held_out = ImageSource.from_tensor(real.get(torch.arange(n, n + m)), "real")
    gen = generated.get(torch.arange(ks[-1]))
    jobs = []
    for i, (_name, n_real, k) in enumerate(settings):
        train_images = torch.cat([real_train[:n_real], gen[:k]])
        samples = fit_fn(train_images, m, make_generator(split_seed(seed, i)))
        if tuple(samples.shape) != (m, *real.image_shape):
            raise ValueError(f"fit must return ({m}, {', '.join(map(str, real.image_shape))}) samples")
        jobs.append(([held_out, ImageSource.from_tensor(samples, "refitted")], cfg, split))
    done = _train_all(jobs, "mixing", device, progress)
    rows, runs = [], []
    for (name, n_real, k), run in zip(settings, done):
        lo, hi = run.test.accuracy_ci95 or (float("nan"), float("nan"))
        acc = run.test.accuracy
        f = k / (n_real + k)
        rows.append([name, n_real, k, f, acc, lo, hi, 2 * acc - 1, ideal_accuracy(n_real, k)])
        runs.append(_summary(run, setting=name, real_images=n_real, generated_images=k))
    fit_name = fit if isinstance(fit, str) else getattr(fit, "__name__", "custom")
    return Report(
        "data_mixing",
        f"real vs refitted generator ({fit_name}; {real.name} + {generated.name}; {cfg.arch}, filter {cfg.filter})",
        [
            "setting",
            "real_images",
            "generated_images",
            "generated_fraction",
            "accuracy",
            "ci95_low",
            "ci95_high",
            "tv_lower_bound",
            "ideal_accuracy",
        ],
        rows,
        {
            "kind": "bars",
            "labels": [r[0] for r in rows],
            "values": [r[4] for r in rows],
            "chance": 0.5,
            "n": n,
            "ks": ks,
            "num_samples": m,
            "fit": fit_name,
        },
        runs,
    )
