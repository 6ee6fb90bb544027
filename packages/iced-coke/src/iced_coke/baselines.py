"""Baselines the paper compares MoCE with (released eval_static_model.py / eval_AAE.py): plain sampling of the
prompt, prompt engineering, and Attend-and-Excite (diffusers' pipeline) on the two concepts' tokens."""

from __future__ import annotations

from typing import Any, Literal

from iced_coke.pairs import ConceptPair

__all__ = [
    "attend_and_excite_pipeline",
    "attend_and_excite_sample",
    "concept_token_indices",
    "engineered_prompt",
    "plain_sample",
]

PromptStyle = Literal["prompt", "first", "first_and_second"]


def engineered_prompt(pair: ConceptPair, style: PromptStyle = "first_and_second") -> str:
    """The release's prompt variants: ``"first {first}, and second {prompt}"``, the first concept alone, or the
    prompt itself."""
    if style == "first_and_second":
        return f"first {pair.first_prompt}, and second {pair.prompt}"
    if style == "first":
        return pair.first_prompt
    if style == "prompt":
        return pair.prompt
    raise ValueError(f"unknown prompt style {style!r}; use prompt, first or first_and_second")


def plain_sample(
    pipe: Any,
    pair: ConceptPair,
    num_inference_steps: int,
    generator=None,
    style: PromptStyle = "prompt",
    **kw: Any,
) -> Any:
    """Plain sampling of the prompt (or an engineered variant): the baseline MoCE must beat."""
    return pipe(
        prompt=engineered_prompt(pair, style),
        num_inference_steps=num_inference_steps,
        generator=generator,
        **kw,
    )


def concept_token_indices(tokenizer: Any, pair: ConceptPair) -> list[int]:
    """Positions (BOS = 0) of the prompt's tokens that belong to a word of either concept — what the release
    passes to Attend-and-Excite as ``token_indices``."""
    ids = tokenizer(pair.prompt).input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids)
    words = set()
    for concept in (pair.first_prompt, pair.second_prompt):
        for w in concept.split():
            words.update(tokenizer.convert_ids_to_tokens(tokenizer(w, add_special_tokens=False).input_ids))
    idx = [i for i, t in enumerate(tokens) if t in words and i not in (0, len(tokens) - 1)]
    if not idx:
        raise ValueError(
            f"no token of {pair.first_prompt!r} or {pair.second_prompt!r} found in {pair.prompt!r}"
        )
    return idx


def attend_and_excite_pipeline(sd_pipe: Any) -> Any:
    """diffusers' ``StableDiffusionAttendAndExcitePipeline`` sharing an SD pipeline's components."""
    import diffusers

    comps = {k: v for k, v in sd_pipe.components.items() if k != "image_encoder"}
    pipe = diffusers.StableDiffusionAttendAndExcitePipeline(**comps, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def attend_and_excite_sample(
    ae_pipe: Any, pair: ConceptPair, num_inference_steps: int, generator=None, **kw: Any
) -> Any:
    return ae_pipe(
        prompt=pair.prompt,
        token_indices=concept_token_indices(ae_pipe.tokenizer, pair),
        num_inference_steps=num_inference_steps,
        generator=generator,
        **kw,
    )
