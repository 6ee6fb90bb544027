"""A tiny offline causal language model with a chat template (``pip install 'gen-common[testing-diffusers]'``).

- `tiny_chat_tokenizer`: a byte-level BPE (`tokenizers`) trained on `gen_common.text.bundled_corpus` (so no file
  and no hub is needed; every string encodes, nothing maps to an unknown token), wrapped in
  `PreTrainedTokenizerFast` with ChatML special tokens and `CHAT_TEMPLATE`, so
  ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)`` works offline.
- `tiny_causal_lm`: ``(model, tokenizer)`` with a `LlamaForCausalLM` of width 32 (2 layers, grouped-query
  attention) sized to the tokenizer; ``generate`` stops at ``<|im_end|>``, pads with ``<|endoftext|>``.

Both round-trip through ``save_pretrained`` / ``from_pretrained`` (``AutoTokenizer``/``AutoModelForCausalLM``).
"""

from __future__ import annotations

from typing import Any

from gen_common.testing.diffusers_tiny import _require, _seeded_build

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "tiny_causal_lm", "tiny_chat_tokenizer"]

# ChatML, as Qwen/SmolLM-style chat models use it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TRAIN_CHARS = 60_000  # enough text for the merges; training takes ~0.1 s


def tiny_chat_tokenizer(vocab_size: int = 512) -> Any:
    """A `PreTrainedTokenizerFast`: byte-level BPE with ``vocab_size`` entries (the 256 bytes, the special tokens
    and merges learnt on the bundled corpus), ChatML special tokens and `CHAT_TEMPLATE`. Deterministic for a
    given Python minor version (the corpus ships with CPython)."""
    tokenizers = _require("tokenizers")
    transformers = _require("transformers")
    from gen_common.text import bundled_corpus

    byte_level = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = byte_level
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = bundled_corpus(TRAIN_CHARS)
    tok.train_from_iterator(text.split("\n\n"), trainer=trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=256,
    )


def tiny_causal_lm(
    seed: int = 0, hidden_size: int = 32, layers: int = 2, vocab_size: int = 512
) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a `LlamaForCausalLM` (eval mode, tied embeddings, 256 positions) and
    `tiny_chat_tokenizer(vocab_size)`, both offline."""
    transformers = _require("transformers")
    tokenizer = tiny_chat_tokenizer(vocab_size)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded_build(seed):
        model = transformers.LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
