"""The tour's demo: offline, tiny models, fixed seed.

1. A ~200-token prompt: what plain 77-token CLIP encoding drops vs what segment encoding keeps, and images from the
   same tiny pipeline both ways.
2. The decomposition identities on a tiny CLIP (relevant + irrelevant = t·f, (t − ηv)·v = 0, the w = 0 gradient ⟂ v).
3. A few reward fine-tuning steps (LoRA, official rollout on a coarser grid) moving the reweighted score.
"""

from __future__ import annotations

from typing import Any

import torch

from gen_common.demo import DemoContext, DemoResult, Table

__all__ = ["run_demo"]


def _identities(pref: Any, seed: int) -> dict[str, float]:
    from longalign.preference import decompose_preference, preference_score

    prompts = [
        "A red cube. A blue ball.",
        "A green field at noon.",
        "Night sky. A moon.",
        "Two cats on a sofa.",
    ]
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(4, 3, 32, 32, generator=g)
    t = pref.text_features(prompts).double()
    with torch.no_grad():
        f = pref.image_features(images, generator=g).double()
    v = t.mean(0) / t.mean(0).norm()
    rel, irr = decompose_preference(f, t, v)
    eta = t @ v
    f_var = f.clone().requires_grad_(True)
    preference_score(f_var, t, v, weight=0.0).sum().backward()
    grad = f_var.grad
    return {
        "max |relevant + irrelevant − t·f|": float((rel + irr - (t * f).sum(-1)).abs().max()),
        "max |(t − ηv)·v|": float(((t - eta[:, None] * v) @ v).abs().max()),
        "max |∇_f score(w=0) · v|": float((grad @ v).abs().max()),
        "max |score(w=1) − t·f|": float(
            (preference_score(f, t, v, weight=1.0) - (t * f).sum(-1)).abs().max()
        ),
    }


def run_demo(ctx: DemoContext) -> DemoResult:
    from gen_common.testing.clip_tiny import tiny_clip_model
    from longalign.bench import long_prompt
    from longalign.lora import LoraSpec, add_lora
    from longalign.pipeline import LongPromptPipeline
    from longalign.preference import DecomposedPreference
    from longalign.reward import RewardConfig, RewardObjective
    from longalign.runs import contact_sheet
    from longalign.toys import tiny_sd_pipeline, tiny_tokenizer

    large = ctx.scale == "large"
    pipe = tiny_sd_pipeline(seed=ctx.seed).to(ctx.device)
    prompt = long_prompt(15)
    n_tokens = len(pipe.tokenizer(prompt, truncation=False, verbose=False).input_ids)
    long_pipe = LongPromptPipeline.from_pipe(pipe, max_length=240)
    enc = long_pipe.encoder([prompt])

    # 1. plain (truncated at 77 tokens) vs segment-encoded generation, same seed and sampler
    steps = 10
    # what the stock pipeline encodes (cut at 77 tokens), cut here so its truncation warnings don't flood the tour
    tok = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        plain_embeds = pipe.text_encoder(tok.input_ids.to(pipe.device))[0]
    plain = pipe(
        prompt_embeds=plain_embeds,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(ctx.seed),
    ).images[0]
    seg = long_pipe(
        prompt, num_inference_steps=steps, generator=torch.Generator().manual_seed(ctx.seed)
    ).images[0]
    tail = prompt.split(". ")[-1]
    plain_tail = pipe(
        tail, num_inference_steps=steps, generator=torch.Generator().manual_seed(ctx.seed)
    ).images[0]
    sheet = contact_sheet(
        [plain, seg, plain_tail],
        ["plain CLIP (first 77 tokens)", "segment encoding (all sentences)", f"last sentence alone: {tail}"],
        ctx.path("longalign_samples.png"),
    )

    # 2. identities on a tiny CLIP
    pref = DecomposedPreference(tiny_clip_model(seed=ctx.seed), tiny_tokenizer(), image_size=32, weight=0.3)
    pref.to(ctx.device)
    ident = _identities(pref, ctx.seed)

    # 3. a few reward steps on one batch (LoRA r=4, 10-step DDIM grid, gradients at 2 steps)
    add_lora(pipe.unet, LoraSpec(rank=4, dropout=0.0), seed=ctx.seed)
    cfg = RewardConfig(batch_size=2, stride=50 if large else 100, grad_every=5, unet_checkpointing=False)
    obj = RewardObjective(pipe, long_pipe.encoder, pref, cfg).train()
    prompts = [long_prompt(4), "A small red boat on a calm lake. Pine trees on the shore. A grey sky."]
    batch = obj.make_batch(prompts, 0, torch.Generator().manual_seed(ctx.seed))
    batch["noise"] = batch["noise"].to(ctx.device)
    opt = torch.optim.Adam([p for p in obj.parameters() if p.requires_grad], lr=2e-3)
    rows = []
    for step in range(6 if large else 4):
        loss, m = obj(batch, torch.Generator().manual_seed(ctx.seed))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rows.append([step, m["score"], m["relevant"], m["irrelevant"], float(loss.detach())])

    metrics: dict[str, Any] = {
        "prompt tokens": n_tokens,
        "tokens plain CLIP drops": max(0, n_tokens - 77),
        "segment rows kept": int(enc.lengths[0]),
        "segments": len(enc.segments[0]),
        **ident,
        "score before": rows[0][1],
        "score after": rows[-1][1],
    }
    return DemoResult(
        title="LongAlign: long prompts and decomposed preference",
        summary=(
            f"A {n_tokens}-token prompt: plain CLIP keeps 77 tokens, segment encoding keeps all "
            f"{int(enc.lengths[0])} rows of its {len(enc.segments[0])} sentences. The preference decomposition "
            f"holds to float64 precision, and {len(rows)} reward steps move the reweighted score "
            f"{rows[0][1]:.4f} → {rows[-1][1]:.4f} on the training batch."
        ),
        metrics=metrics,
        tables=[
            Table("reward fine-tuning (w = 0.3)", ["step", "score", "relevant", "irrelevant", "loss"], rows)
        ],
        figures=[sheet],
        headline={
            "claim": "segment-level encoding keeps prompts far beyond CLIP's 77 tokens, and reweighting the "
            "text-irrelevant part of a CLIP-style preference (w = 0.3) lets reward fine-tuning improve alignment",
            "paper": "SD 1.5 fine-tuned ~20 h with LongAlign beats PixArt-α and Kandinsky v2.2 on long-text alignment",
            "measured": f"{n_tokens}-token prompt: plain CLIP drops {max(0, n_tokens - 77)} tokens, segment encoding "
            f"keeps {int(enc.lengths[0])} rows; reweighted score {rows[0][1]:.4f} → {rows[-1][1]:.4f} in "
            f"{len(rows)} LoRA reward steps",
            "reproduces": None,
            "reason": "the encoding rule and the decomposition identities are checked exactly; the alignment gain "
            "needs SD 1.5, real preference models and GPU hours (the tiny models here only show the score moving)",
        },
        captions={
            sheet.name: "Plain CLIP encoding (truncated at 77 tokens) vs segment encoding of the same long "
            "prompt on a tiny random SD: the images differ because the tail sentences reach the UNet."
        },
    )
