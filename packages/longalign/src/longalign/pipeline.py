"""Long prompts in a stock diffusers Stable Diffusion pipeline (paper Sec. 3.1; official ``sample.py``).

`LongPromptPipeline.from_pipe(pipe)` keeps ``pipe`` as it is (any scheduler: UniPC 25 steps at CFG 7.5 as in the
paper, LCM 4 steps, DDIM, ...) and only replaces its text encoding: the prompt and the negative prompt go through a
`SegmentEncoder` and enter the pipeline as ``prompt_embeds`` / ``negative_prompt_embeds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from longalign.segments import SegmentEncoder

__all__ = ["LongPromptPipeline"]


class LongPromptPipeline:
    """A stock Stable Diffusion pipeline driven by segment-encoded prompts; called like the pipeline itself."""

    def __init__(self, pipe: Any, encoder: SegmentEncoder) -> None:
        self.pipe = pipe
        self.encoder = encoder

    @classmethod
    def from_pipe(cls, pipe: Any, **encoder_kwargs: Any) -> LongPromptPipeline:
        """Wrap ``pipe`` (a `StableDiffusionPipeline` or any pipeline taking ``prompt_embeds``); keyword
        arguments go to `SegmentEncoder` (``max_length=240``, ``splitter="default"``, ...)."""
        return cls(pipe, SegmentEncoder.from_pipe(pipe, **encoder_kwargs))

    def encode(
        self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt_embeds, negative_prompt_embeds), each (B, max_length, D); the negative prompt defaults to ""."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if negative_prompt is None:
            negative_prompt = ""
        negs = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
        if len(negs) != len(prompts):
            raise ValueError(
                f"{len(negs)} negative prompts for {len(prompts)} prompts: give one or one per prompt"
            )
        both = self.encoder(prompts + negs).embeds
        return both[: len(prompts)], both[len(prompts) :]

    def __call__(
        self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None, **kwargs: Any
    ) -> Any:
        for k in ("prompt_embeds", "negative_prompt_embeds"):
            if k in kwargs:
                raise TypeError(
                    f"{k} is computed from the prompt; call the wrapped .pipe directly to pass your own"
                )
        pe, npe = self.encode(prompt, negative_prompt)
        unet = getattr(self.pipe, "unet", None)
        dtype = next(unet.parameters()).dtype if unet is not None else pe.dtype
        return self.pipe(prompt_embeds=pe.to(dtype), negative_prompt_embeds=npe.to(dtype), **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Everything else (scheduler, to(), progress bar config, ...) is the wrapped pipeline's.
        if name in ("pipe", "encoder"):
            raise AttributeError(name)
        return getattr(self.pipe, name)
