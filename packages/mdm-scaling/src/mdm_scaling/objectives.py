"""Training objectives and validation losses of both architectures, in nats per token.

- MDM (Sec. 2, Eq. (3); official ``train_mdm.py``): t ~ U(0, 1), mask each token with probability
  λ = (1 − ε)t + ε (ε = 1e-3), loss = Σ_masked −log p_θ(x⁰ⁱ | x_λ) / λ, divided by B·L. This is radd's λ-DCE
  loss (``radd.losses.lambda_dce_loss``), used as is; only the per-token normalisation is added here.
- ARM: next-token cross-entropy on the same windows.
- Conditional (SFT) variants score only the response; ``prompt_dropout`` replaces the prompt by masks for a random
  fraction of the sequences: supervised classifier-free guidance training (Sec. 5 / App. B.4, official
  ``finetune_mdm.py --cfg``; the official code drops the prompt of the whole batch at once, here each sequence
  draws its own coin, which gives the same expected fraction with less variance).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from radd.likelihood import estimate_nll
from radd.losses import lambda_dce_loss

from gen_common.seeding import rand
from mdm_scaling.model import AutoregressiveLM

__all__ = [
    "arm_loss",
    "arm_token_nll",
    "is_autoregressive",
    "loss_fn_for",
    "mdm_loss",
    "mdm_sft_loss",
    "sft_loss_fn_for",
    "validation_loss",
]

SMDM_EPS = 1e-3


def is_autoregressive(model: Any) -> bool:
    base = getattr(model, "module", model)  # accelerate/DDP wrappers
    return isinstance(base, AutoregressiveLM) or bool(getattr(base, "causal", False))


def arm_token_nll(model: Any, x: torch.Tensor) -> torch.Tensor:
    """−log p(x_{i+1} | x_{≤i}) for every position, (B, L) from a (B, L + 1) batch (float32)."""
    logits = model(x[:, :-1]).float()
    return F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")


def arm_loss(model: Any, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over a (B, L + 1) batch (``weights`` (B, L) select the scored targets)."""
    nll = arm_token_nll(model, x)
    if weights is None:
        return nll.mean()
    w = weights.to(nll.dtype)
    return (nll * w).sum() / w.sum().clamp_min(1.0)


def mdm_loss(model: Any, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SMDM's training loss (Eq. (3)) in nats per token, on the first L tokens of a (B, L + 1) batch."""
    seq = x[:, :-1]
    per_seq = lambda_dce_loss(model, seq, generator, eps=SMDM_EPS)
    return per_seq.mean() / seq.shape[1]


def mdm_sft_loss(
    model: Any,
    x: torch.Tensor,
    prompt_mask: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    prompt_dropout: float = 0.0,
    mask_id: int | None = None,
) -> torch.Tensor:
    """Conditional MDM loss: mask only response positions (``~prompt_mask``); with probability ``prompt_dropout``
    a sequence's prompt is also replaced by masks (unscored), training the unconditional model for CFG.

    Normalised by the number of response tokens, as the official SFT script does.
    """
    from radd.masked_model import resolve_mask_id

    if not 0.0 <= prompt_dropout <= 1.0:
        raise ValueError("prompt_dropout must be in [0, 1]")
    seq = x[:, :-1] if prompt_mask.shape[-1] == x.shape[1] - 1 else x
    pm = prompt_mask.expand_as(seq).bool()
    mid = resolve_mask_id(model, mask_id)
    target_model = model
    if prompt_dropout > 0:
        drop = rand((seq.shape[0],), generator, device=seq.device) < prompt_dropout
        hidden = pm & drop[:, None]
        if hidden.any():
            # The loss masks `seq` itself; hiding the prompt happens on the way into the network.
            def target_model(z: torch.Tensor) -> torch.Tensor:
                return model(z.masked_fill(hidden[: z.shape[0]], mid))

    per_seq = lambda_dce_loss(target_model, seq, generator, eps=SMDM_EPS, positions=~pm, mask_id=mid)
    return per_seq.sum() / (~pm).sum().clamp_min(1)


def sft_loss_fn_for(model: Any, prompt_dropout: float = 0.0):
    """``loss_fn(model, (x, prompt_mask), generator)``: the response-only loss of either arch (prompt dropout,
    i.e. supervised CFG training, applies to the MDM)."""
    if is_autoregressive(model):
        return lambda m, batch, gen: arm_loss(m, batch[0], weights=~batch[1][:, 1:])
    return lambda m, batch, gen: mdm_sft_loss(
        m, batch[0], batch[1][:, :-1], gen, prompt_dropout=prompt_dropout
    )


def loss_fn_for(model: Any):
    """``loss_fn(model, batch, generator)`` for gen_common's training loop, by architecture."""
    if is_autoregressive(model):
        return lambda m, batch, gen: arm_loss(m, batch)
    return lambda m, batch, gen: mdm_loss(m, batch, gen)


@torch.no_grad()
def validation_loss(
    model: Any,
    windows: torch.Tensor,
    *,
    num_samples: int = 32,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
) -> float:
    """Nats per token on (N, L + 1) windows: exact for the ARM; for the MDM the Monte Carlo bound
    (``radd.estimate_nll`` with SMDM's λ estimator and ``num_samples`` draws; the paper uses 128) on L tokens."""
    was = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        if is_autoregressive(model):
            return float(arm_token_nll(model, windows).mean())
        seq = windows[:, :-1]
        nll = estimate_nll(
            model,
            seq,
            num_samples,
            estimator="lambda",
            generator=generator,
            batch_size=batch_size,
            eps=SMDM_EPS,
        )
        return float(nll.mean() / seq.shape[1])
    finally:
        if was and hasattr(model, "train"):
            model.train()
