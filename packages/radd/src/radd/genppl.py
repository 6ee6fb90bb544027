"""Generative perplexity: score generated samples with a local causal language model (GPT-2-large in SEDD, RADD
and MDLM), reported beside the samples' unigram entropy, because a sampler that repeats a few tokens gets a low
perplexity from any scorer (a known way to game the metric; MDLM reports the entropy for this reason).

Each sample is re-tokenised with the scorer's tokenizer and cut into chunks of the scorer's context length; within
a chunk every token after the first is scored given the preceding ones (as MDLM's ``compute_generative_perplexity``),
and the perplexity is exp(total NLL / scored tokens). The entropy is that of each sample's token frequencies
(nats), averaged over samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["SAMPLE_SEPARATOR", "GenPPL", "generative_perplexity", "load_scorer", "read_samples"]

SAMPLE_SEPARATOR = "\n\n=====\n\n"  # how `radd sample --out` writes samples.txt


@dataclass
class GenPPL:
    perplexity: float
    nll_nats_per_token: float
    scored_tokens: int
    num_samples: int
    unigram_entropy_nats: float  # mean over samples of the entropy of its token frequencies
    per_sample_nll: list[float]


def read_samples(path: str | Path) -> list[str]:
    """Samples from ``samples.txt`` as `radd sample` writes it (separated by ``=====`` lines), a ``.jsonl`` file
    (``text`` field), a ``.json`` list of strings, or a text file with one sample per line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"samples file not found: {p}")
    raw = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".jsonl":
        texts = [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]
    elif p.suffix.lower() == ".json":
        data = json.loads(raw)
        texts = [d["text"] if isinstance(d, dict) else d for d in data]
    elif SAMPLE_SEPARATOR.strip() in raw:
        texts = [t.strip("\n") for t in raw.split(SAMPLE_SEPARATOR)]
    else:
        texts = raw.splitlines()
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError(f"{p} holds no samples")
    return texts


def load_scorer(folder: str | Path, device: torch.device | str = "cpu") -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a LOCAL folder (e.g. ``huggingface-cli download gpt2-large
    --local-dir gpt2-large``); nothing downloads."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ImportError(
            'generative perplexity needs transformers: pip install "radd-diffusion[hf]"'
        ) from exc
    p = Path(folder).expanduser()
    if not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"scorer folder {p} has no config.json (download one once, e.g. `huggingface-cli download gpt2-large "
            "--local-dir gpt2-large`, and pass that folder)"
        )
    tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True).to(device).eval()
    return model, tok


def _entropy(ids: list[int]) -> float:
    counts = torch.bincount(torch.tensor(ids, dtype=torch.long)).double()
    q = counts[counts > 0] / counts.sum()
    return float(-(q * q.log()).sum())


@torch.no_grad()
def generative_perplexity(
    texts: list[str], model: Any, tokenizer: Any, *, batch_size: int = 8, context: int | None = None
) -> GenPPL:
    """exp(NLL per scored token) of ``texts`` under the causal LM, and their mean unigram entropy."""
    ctx = int(context or getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
    dev = next(model.parameters()).device
    chunks: list[tuple[int, list[int]]] = []  # (sample index, token ids)
    entropies = []
    for i, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"sample {i} tokenises to nothing")
        entropies.append(_entropy(ids))
        chunks.extend((i, ids[s : s + ctx]) for s in range(0, len(ids), ctx))
    nll = [0.0] * len(texts)
    count = 0
    for b in range(0, len(chunks), batch_size):
        part = chunks[b : b + batch_size]
        width = max(len(c) for _, c in part)
        x = torch.zeros(len(part), width, dtype=torch.long)
        valid = torch.zeros(len(part), width, dtype=torch.bool)
        for j, (_, c) in enumerate(part):
            x[j, : len(c)] = torch.tensor(c)
            valid[j, : len(c)] = True
        x, valid = x.to(dev), valid.to(dev)
        logits = model(input_ids=x, attention_mask=valid.long()).logits.float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, x[:, 1:, None])[..., 0]
        scored = valid[:, 1:]
        per_chunk = -(lp * scored).sum(dim=1)
        for j, (i, _) in enumerate(part):
            nll[i] += float(per_chunk[j])
        count += int(scored.sum())
    if count == 0:
        raise ValueError("no token to score: every sample is a single token")
    mean = sum(nll) / count
    return GenPPL(math.exp(mean), mean, count, len(texts), sum(entropies) / len(entropies), nll)
