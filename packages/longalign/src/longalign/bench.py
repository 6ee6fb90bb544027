"""Benchmarks that print ratios from one run: batched segment encoding against one encoder call per segment, and
one reward step with against without gradient checkpointing (time, and memory: peak CUDA memory on a GPU; on a
CPU, the bytes of activations autograd keeps for the backward pass)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from gen_common.bench import compare, time_call

__all__ = [
    "bench_encoding",
    "bench_reward_step",
    "long_prompt",
    "per_segment_encode",
    "sd15_text_config",
    "sd15_text_encoder",
]

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


def sd15_text_config() -> Any:
    """The `CLIPTextConfig` of Stable Diffusion 1.5's text encoder (CLIP ViT-L/14's text tower: width 768, 12 layers,
    12 heads, MLP 3072, 77 positions, quick-GELU; 123M parameters)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def sd15_text_encoder(
    seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> Any:
    """SD 1.5's text encoder at full size with random weights built from `sd15_text_config` under ``seed``: nothing
    is downloaded (timing does not depend on the weights' values)."""
    from transformers import CLIPTextModel

    cfg = sd15_text_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPTextModel(cfg).eval()
    return model.to(device=device, dtype=dtype)


def bench_encoding(
    pipe: Any, sentences: int = 10, repeats: int = 5, text_encoder: Any = None
) -> dict[str, Any]:
    """Batched segment encoding against one call per segment, with the pipeline's tokenizer and its text encoder
    (or ``text_encoder``, e.g. `sd15_text_encoder` for SD 1.5's size on a tiny pipeline)."""
    from longalign.segments import SegmentEncoder

    encoder = text_encoder if text_encoder is not None else pipe.text_encoder
    enc = SegmentEncoder(pipe.tokenizer, encoder, warn_truncation=False)
    prompt = long_prompt(sentences)
    dev = enc.device
    batched = enc([prompt]).embeds[0]
    # same rows either way; in bf16/fp16 a padded batch and single calls round differently (~1e-2 at tiny size)
    tol = 1e-4 if batched.dtype == torch.float32 else 5e-2
    torch.testing.assert_close(per_segment_encode(enc, prompt).float(), batched.float(), atol=tol, rtol=tol)
    res = compare(lambda: per_segment_encode(enc, prompt), lambda: enc([prompt]), repeats=repeats, device=dev)
    return {
        "sentences": sentences,
        "segments": len(enc.segments(prompt)),
        "encoder_params": sum(p.numel() for p in encoder.parameters()),
        "threads": torch.get_num_threads(),
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
            with warnings.catch_warnings():
                # one prompt: the relevant part is 0 (warned about), which changes no time or memory measured here
                warnings.filterwarnings("ignore", message="batch of 1")
                loss, _ = obj(batch, torch.Generator().manual_seed(seed))
            loss.backward()
            obj.zero_grad(set_to_none=True)
            return float(loss.detach())

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
