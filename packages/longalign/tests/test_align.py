from __future__ import annotations

import math

import torch
from longalign.lora import LoraSpec
from longalign.toys import tiny_sd_pipeline
from longalign.training import train_align

from gen_common.training import TrainConfig


def test_stage1_trains_only_the_lora_with_caption_dropout():
    pipe = tiny_sd_pipeline(seed=0)
    seen: list[list[str]] = []
    from longalign import SegmentEncoder

    enc = SegmentEncoder.from_pipe(pipe)
    call = enc.__call__

    class Spy(SegmentEncoder):
        def __call__(self, prompts):
            seen.append(list(prompts))
            return call(prompts)

    spy = Spy(pipe.tokenizer, pipe.text_encoder)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    captions = [f"Picture {i}. A long caption about object {i} in a room." for i in range(4)]
    base = {n: p.detach().clone() for n, p in pipe.unet.named_parameters()}
    _, res = train_align(
        pipe,
        images,
        captions,
        batch_size=4,
        caption_dropout=0.5,
        lora=LoraSpec(rank=4),
        config=TrainConfig(steps=3, lr=1e-3, log_every=1, seed=0),
        encoder=spy,
        device="cpu",
        progress=False,
    )
    assert len(res.history) == 3 and all(math.isfinite(h["loss"]) for h in res.history)
    flat = [c for batch in seen for c in batch]
    assert "" in flat and any(c in captions for c in flat)  # some captions dropped, some kept
    for n, p in pipe.unet.named_parameters():
        if "lora_" in n:
            continue
        key = n.replace(".base_layer", "")
        assert torch.equal(p.detach(), base[key]), n  # the base UNet is untouched
    assert any(float(p.detach().abs().max()) > 0 for n, p in pipe.unet.named_parameters() if "lora_B" in n)
