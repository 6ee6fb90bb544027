"""Benchmarks that print ratios from one run: batched segment encoding against one encoder call per segment, and
one reward step with against without gradient checkpointing (time, and memory: peak CUDA memory on a GPU; on a
CPU, the bytes of activations autograd keeps for the backward pass)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from gen_common.bench import compare, time_call

__all__ = ["bench_encoding", "bench_reward_step", "long_prompt", "per_segment_encode"]

_WORDS = (
    "a quiet harbour town at dawn with red roofs and white walls",
    "fishing boats with blue hulls rest on the calm green water",
    "an old lighthouse stands on the rocks to the left of the pier",
    "gulls circle above a market where people sell bread and fruit",
    "a narrow street climbs the hill between stone houses with flowers",
    "the sky is pale orange and a few thin clouds drift to the east",
    "a child in a yellow coat runs after a small brown dog",
    "laundry hangs from the balconies and moves in the soft wind",
    "in the distance snowy mountains rise behind a pine forest",
    "warm light falls on the wet cobblestones of the square",
)


def long_prompt(sentences: int = 10) -> str:
    """A deterministic prompt of ``sentences`` sentences (about 13 tokens each)."""
    return " ".join(_WORDS[i % len(_WORDS)].capitalize() + "." for i in range(sentences))


@torch.no_grad()
def per_segment_encode(encoder: Any, prompt: str) -> torch.Tensor:
    """The baseline: the same rows as `SegmentEncoder`, but one text-encoder call per segment."""
    rows = []
    drop = encoder._drop_ids()
    for seg in encoder.segments(prompt):
        ids = encoder.tokenizer(
            [seg], truncation=True, max_length=encoder.window, return_tensors="pt"
        ).input_ids
        h = encoder._encode_ids(ids)[0]
        keep = torch.ones(ids.shape[1], dtype=torch.bool)
        for d in drop:
            keep &= ids[0] != d
        rows.append(h[keep.to(h.device)])
    out = torch.cat(rows)[: encoder.max_length]
    pad = encoder.pad_vector().to(out.dtype)
    return torch.cat([out, pad.expand(encoder.max_length - out.shape[0], -1)])


def bench_encoding(pipe: Any, sentences: int = 10, repeats: int = 5) -> dict[str, Any]:
    from longalign.segments import SegmentEncoder

    enc = SegmentEncoder.from_pipe(pipe, warn_truncation=False)
    prompt = long_prompt(sentences)
    dev = enc.device
    batched = enc([prompt]).embeds[0]
    torch.testing.assert_close(per_segment_encode(enc, prompt), batched, atol=1e-4, rtol=1e-4)
    res = compare(lambda: per_segment_encode(enc, prompt), lambda: enc([prompt]), repeats=repeats, device=dev)
    return {
        "sentences": sentences,
        "per_segment_s": res.baseline_s,
        "batched_s": res.candidate_s,
        "speedup": res.ratio,
    }


@contextlib.contextmanager
def _saved_bytes() -> Iterator[list[int]]:
    """Count the bytes of tensors autograd saves for backward (what gradient checkpointing reduces)."""
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield total


def bench_reward_step(pipe: Any, preference: Any, stride: int = 20, seed: int = 0) -> dict[str, Any]:
    """One forward + backward of the reward objective with and without checkpointing (same batch, same LoRA)."""
    from longalign.lora import LoraSpec, add_lora
    from longalign.reward import RewardConfig, RewardObjective
    from longalign.segments import SegmentEncoder

    if not any("lora_" in n for n, _ in pipe.unet.named_parameters()):
        add_lora(pipe.unet, LoraSpec(rank=4 if pipe.unet.config.block_out_channels[0] < 128 else 32))
    enc = SegmentEncoder.from_pipe(pipe, warn_truncation=False)
    dev = next(pipe.unet.parameters()).device
    results = {}
    for name, ckpt in (("plain", False), ("checkpointed", True)):
        cfg = RewardConfig(stride=stride, use_checkpoint=ckpt, unet_checkpointing=ckpt, batch_size=1)
        obj = RewardObjective(pipe, enc, preference, cfg).train()
        if not ckpt and hasattr(pipe.unet, "disable_gradient_checkpointing"):
            pipe.unet.disable_gradient_checkpointing()
        batch = obj.make_batch([long_prompt(6)], 0, torch.Generator().manual_seed(seed))
        batch["noise"] = batch["noise"].to(dev)
        batch["offset"] = 0

        def step(obj: Any = obj, batch: dict[str, Any] = batch) -> float:
            loss, _ = obj(batch, torch.Generator().manual_seed(seed))
            loss.backward()
            obj.zero_grad(set_to_none=True)
            return float(loss)

        step()  # warm-up (kernels, caches)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            secs, _ = time_call(step, dev)
            mem = torch.cuda.max_memory_allocated(dev) - base
            results[name] = {"seconds": secs, "peak_bytes": int(mem)}
        else:
            with _saved_bytes() as saved:
                secs, _ = time_call(step, dev)
            results[name] = {"seconds": secs, "saved_bytes": int(saved[0])}
    key = "peak_bytes" if dev.type == "cuda" else "saved_bytes"
    results["memory_ratio"] = results["checkpointed"][key] / max(1, results["plain"][key])
    results["time_ratio"] = results["checkpointed"]["seconds"] / max(1e-12, results["plain"]["seconds"])
    results["memory_measure"] = key
    return results
