"""Segment-level encoding of long prompts (paper Sec. 3.1; official ``tools.py: caption2embed``).

A prompt is split into sentences; every sentence is encoded by the CLIP text encoder on its own (so no sentence is
cut by CLIP's 77-token window); the rows of each sentence whose token ids are neither <pad> nor <eot> are kept and
concatenated; the result is truncated to ``max_length`` rows and padded with one shared vector, the mean of the last
60 rows of the encoding of "" padded to 77 tokens. With SD 1.5 (pad == eos) every sentence keeps its <sot> row and
drops its <eot>/<pad> rows, so k sentences of nᵢ tokens give Σ(nᵢ + 1) content rows.

All sentences of a batch go through the text encoder in one call (padded to the longest; the encoder is causal and
called without an attention mask as in the release, so padding never changes a sentence's rows).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "SPLITTERS",
    "SegmentEncoder",
    "SegmentEncoding",
    "split_default",
    "split_official",
    "split_sentences",
]

# The release's pattern, kept verbatim in meaning: the alternatives are `"!`, `.`, `?` and `;"` (the quotes are
# literal characters of the pattern), so a bare `!` or `;` does not split.
_OFFICIAL = re.compile(r'"!|\.|\?|;"')
# A sentence ends at . ! ? or ; followed by whitespace or the end (so "3.5" and "e.g.x" stay whole).
_DEFAULT = re.compile(r"(?<=[.!?;])\s+")


def split_official(text: str) -> list[str]:
    """The release's splitter, quirks included: every non-empty piece gets a '.' appended (a whitespace-only piece
    becomes a lone "." segment after tokenisation); a text with no pieces (e.g. "") is its own single segment."""
    pieces = [p + "." for p in _OFFICIAL.split(text) if len(p) > 0]
    return pieces if pieces else [text]


def split_default(text: str) -> list[str]:
    """A sane sentence splitter: split after . ! ? ; followed by whitespace, strip, drop empty pieces, and end a
    sentence that has no terminator with '.'; "" stays one empty segment (one <sot> row)."""
    out = []
    for piece in _DEFAULT.split(text.strip()):
        piece = piece.strip()
        if not piece or not piece.strip(".!?; "):
            continue
        out.append(piece if piece[-1] in ".!?;" else piece + ".")
    return out if out else [""]


SPLITTERS: dict[str, Callable[[str], list[str]]] = {"default": split_default, "official": split_official}


def split_sentences(text: str, splitter: str | Callable[[str], list[str]] = "default") -> list[str]:
    """The segments of ``text`` under a named splitter ("default", "official") or a callable."""
    if callable(splitter):
        return list(splitter(text))
    try:
        return SPLITTERS[splitter](text)
    except KeyError:
        raise ValueError(
            f"unknown splitter {splitter!r}: use one of {sorted(SPLITTERS)} or a callable"
        ) from None


@dataclass
class SegmentEncoding:
    """Segment-encoded prompts: ``embeds`` (B, max_length, D), ``lengths`` (B,) content rows before the padding,
    ``segments`` the sentences of each prompt, ``truncated`` (B,) content rows cut by ``max_length``."""

    embeds: torch.Tensor
    lengths: torch.Tensor
    segments: list[list[str]]
    truncated: list[int]

    @property
    def mask(self) -> torch.Tensor:
        """(B, max_length) bool: True on content rows."""
        idx = torch.arange(self.embeds.shape[1], device=self.embeds.device)
        return idx[None] < self.lengths.to(self.embeds.device)[:, None]


class SegmentEncoder:
    """Encode prompts of any length for a Stable Diffusion UNet (paper Sec. 3.1).

    ``SegmentEncoder(tokenizer, text_encoder, max_length=240, splitter="default")`` or
    ``SegmentEncoder.from_pipe(pipe)``; ``encoder(["a long prompt. ...", ...])`` returns a `SegmentEncoding`.
    ``splitter="official"`` reproduces the release's regex exactly. ``branch`` optionally appends a second encoding
    along the sequence (the release's T5 + adapter: a callable ``prompts -> (B, L2, D)``), giving
    (B, max_length + L2, D) as in LongSD.
    """

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: torch.nn.Module,
        max_length: int = 240,
        splitter: str | Callable[[str], list[str]] = "default",
        pad_rows: int = 60,
        branch: Callable[[list[str]], torch.Tensor] | None = None,
        warn_truncation: bool = True,
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be >= 1")
        if not callable(splitter) and splitter not in SPLITTERS:
            raise ValueError(f"unknown splitter {splitter!r}: use one of {sorted(SPLITTERS)} or a callable")
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.max_length = int(max_length)
        self.splitter = splitter
        self.pad_rows = int(pad_rows)
        self.branch = branch
        self.warn_truncation = warn_truncation
        self.window = int(getattr(tokenizer, "model_max_length", 77) or 77)
        if self.window > 10_000:  # tokenizers without a configured limit report a huge sentinel
            self.window = 77
        self._pad_cache: dict[tuple[Any, ...], torch.Tensor] = {}

    @classmethod
    def from_pipe(cls, pipe: Any, **kwargs: Any) -> SegmentEncoder:
        """The encoder of a diffusers Stable Diffusion pipeline (its tokenizer and text encoder)."""
        if getattr(pipe, "tokenizer", None) is None or getattr(pipe, "text_encoder", None) is None:
            raise ValueError(
                f"{type(pipe).__name__} has no tokenizer/text_encoder to build a SegmentEncoder from"
            )
        return cls(pipe.tokenizer, pipe.text_encoder, **kwargs)

    # -- pieces ---------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.text_encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.text_encoder.parameters()).dtype

    def segments(self, prompt: str) -> list[str]:
        return split_sentences(prompt, self.splitter)

    def _drop_ids(self) -> list[int]:
        ids = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        return [i for i in ids if i is not None]

    def _encode_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        # The release calls the encoder without an attention mask; CLIP is causal, so padding never reaches a row.
        out = self.text_encoder(input_ids.to(self.device))
        return out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state

    @torch.no_grad()
    def pad_vector(self) -> torch.Tensor:
        """(D,) the shared pad vector: mean of the last ``pad_rows`` rows of the encoding of "" padded to 77."""
        key = (id(self.text_encoder), self.device, self.dtype, self.pad_rows)
        if key not in self._pad_cache:
            tok = self.tokenizer([""], max_length=self.window, padding="max_length", return_tensors="pt")
            self._pad_cache[key] = self._encode_ids(tok.input_ids)[0, -self.pad_rows :].mean(dim=0)
        return self._pad_cache[key]

    # -- main call ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, prompts: str | Sequence[str]) -> SegmentEncoding:
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("no prompts to encode")
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError(f"prompts must be strings, got {type(p).__name__}")
        segs = [self.segments(p) for p in prompts]
        flat = [s for ss in segs for s in ss]
        owner = torch.tensor([i for i, ss in enumerate(segs) for _ in ss])
        ids, long_segments = self._tokenize(flat)
        hidden = self._encode_ids(ids)  # one encoder call for every segment of the batch
        keep = torch.ones_like(ids, dtype=torch.bool)
        for d in self._drop_ids():
            keep &= ids != d
        keep, owner = keep.to(hidden.device), owner.to(hidden.device)
        pad = self.pad_vector().to(hidden.dtype)
        n, d_model = self.max_length, hidden.shape[-1]
        embeds = pad.expand(len(prompts), n, d_model).clone()
        lengths, cut = [], []
        for b in range(len(prompts)):
            rows = hidden[owner == b][keep[owner == b]]
            cut.append(max(0, rows.shape[0] - n))
            rows = rows[:n]
            embeds[b, : rows.shape[0]] = rows
            lengths.append(rows.shape[0])
        if self.warn_truncation:
            self._warn(long_segments, cut)
        if self.branch is not None:
            extra = self.branch(prompts).to(embeds.device, embeds.dtype)
            embeds = torch.cat([embeds, extra], dim=1)
        return SegmentEncoding(embeds=embeds, lengths=torch.tensor(lengths), segments=segs, truncated=cut)

    def _tokenize(self, texts: list[str]) -> tuple[torch.Tensor, list[str]]:
        """Token ids padded to the longest and cut at the window keeping <eot> (what the tokenizer's
        ``padding=True, truncation=True`` gives), plus the texts that were cut, from one tokenizer call."""
        full = self.tokenizer(texts, truncation=False, verbose=False).input_ids
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        pad = eos if pad is None else pad
        long_segments = [t for t, x in zip(texts, full) if len(x) > self.window]
        full = [x if len(x) <= self.window else [*x[: self.window - 1], eos] for x in full]
        width = max(len(x) for x in full)
        return torch.tensor([x + [pad] * (width - len(x)) for x in full]), long_segments

    def _warn(self, long_segments: list[str], cut: list[int]) -> None:
        if long_segments:
            warnings.warn(
                f"{len(long_segments)} sentence(s) exceed the text encoder's {self.window}-token window and were "
                f"cut there (first: {long_segments[0][:60]!r}...); split them with punctuation",
                UserWarning,
                stacklevel=3,
            )
        if any(cut):
            warnings.warn(
                f"{sum(c > 0 for c in cut)} prompt(s) exceed max_length={self.max_length} rows: "
                f"{max(cut)} row(s) cut at most; raise max_length or shorten the prompt",
                UserWarning,
                stacklevel=3,
            )
