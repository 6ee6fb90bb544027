"""``score(k)`` for the switch-step search: generate N images with MoCE at switch step k and score them.

With the stage-1 cache (default) each batch's stage 1 runs once, to the search's upper bound, and every probe
re-runs only stage 2 from the cached latent (``T − k`` UNet evaluations per batch) starting from the same noise
(common random numbers), as the release does with its modified SDXL base. Without it, every probe re-runs both
stages (``T`` evaluations per batch) — the baseline the benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from iced_coke.moce import (
    Stage1Cache,
    count_unet_calls,
    moce_sample,
    resume_stage2,
    stage1_latents,
    supports_resume,
)
from iced_coke.pairs import ConceptPair
from iced_coke.scoring import PairScorer

__all__ = ["MoCEProbe", "batch_generator"]


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """One CPU generator per batch (noise is drawn on the CPU, so a seed gives the same sample on any device)."""
    return torch.Generator("cpu").manual_seed(int(seed) * 1_000_003 + int(batch))


class MoCEProbe:
    """Callable ``k -> (S1, S2)`` over ``num_images`` images in batches of ``batch_size``.

    ``counts`` records UNet evaluations (``unet_calls``), probes and stage-1 runs; ``images[k]`` keeps the last
    images made at ``k`` (for contact sheets). ``cache=True`` needs a scheduler that resumes exactly (DDIM or Euler)
    or the hand-off ``refiner``; otherwise it falls back to re-running both stages and says so in ``cache_used``.
    """

    def __init__(
        self,
        pipe: Any,
        pair: ConceptPair,
        scorer: PairScorer,
        num_inference_steps: int,
        *,
        refiner: Any | None = None,
        num_images: int = 4,
        batch_size: int = 4,
        seed: int = 0,
        cache: bool = True,
        max_step: int | None = None,
        keep_images: bool = True,
        **pipe_kwargs: Any,
    ) -> None:
        if num_images < 1 or batch_size < 1:
            raise ValueError(f"num_images and batch_size must be >= 1, got {num_images}, {batch_size}")
        self.pipe, self.refiner, self.pair, self.scorer = pipe, refiner, pair, scorer
        self.T = num_inference_steps
        self.num_images, self.batch_size, self.seed = num_images, batch_size, seed
        self.cache_used = bool(cache) and (refiner is not None or supports_resume(pipe.scheduler))
        self.max_step = self.T // 2 if max_step is None else max_step
        self.keep_images = keep_images
        self.pipe_kwargs = dict(pipe_kwargs)
        self.pipe_kwargs.setdefault("output_type", "pil")
        self._caches: list[Stage1Cache] | None = None
        self.images: dict[int, list[Image.Image]] = {}
        self.counts = {"unet_calls": 0, "probes": 0, "stage1_runs": 0}

    def _batches(self) -> list[int]:
        n, b = self.num_images, self.batch_size
        return [min(b, n - i) for i in range(0, n, b)]

    def _stage1(self) -> list[Stage1Cache]:
        if self._caches is None:
            kw = {k: v for k, v in self.pipe_kwargs.items() if k != "output_type"}
            self._caches = []
            for j, n in enumerate(self._batches()):
                c = stage1_latents(
                    self.pipe,
                    self.pair.first_prompt,
                    self.T,
                    self.max_step,
                    generator=batch_generator(self.seed, j),
                    num_images_per_prompt=n,
                    **kw,
                )
                self._caches.append(c)
                self.counts["unet_calls"] += c.unet_calls
            self.counts["stage1_runs"] += 1
        return self._caches

    def generate(self, k: int) -> list[Image.Image]:
        """The ``num_images`` MoCE images at switch step ``k``."""
        out: list[Image.Image] = []
        use_cache = self.cache_used and 1 <= k <= self.max_step
        caches = self._stage1() if use_cache else None
        with count_unet_calls(self.pipe, self.refiner) as c:
            for j, n in enumerate(self._batches()):
                if caches is not None:
                    res = resume_stage2(
                        self.pipe,
                        caches[j],
                        self.pair.prompt,
                        k,
                        refiner=self.refiner,
                        num_images_per_prompt=n,
                        **self.pipe_kwargs,
                    )
                else:
                    res = moce_sample(
                        self.pipe,
                        self.pair.prompt,
                        self.pair.first_prompt,
                        k,
                        self.T,
                        generator=batch_generator(self.seed, j),
                        refiner=self.refiner if k >= 1 else None,
                        num_images_per_prompt=n,
                        **self.pipe_kwargs,
                    )
                out.extend(_as_pil(res.images))
        self.counts["unet_calls"] += c.calls
        if self.keep_images:
            self.images[k] = out
        return out

    def __call__(self, k: int) -> tuple[float, float]:
        self.counts["probes"] += 1
        return self.scorer.score_pair(self.generate(k), self.pair)


def _as_pil(images: Any) -> list[Image.Image]:
    if isinstance(images, Sequence) and images and isinstance(images[0], Image.Image):
        return list(images)
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # numpy layout NHWC
        x = x.permute(0, 3, 1, 2)
    x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in x]
