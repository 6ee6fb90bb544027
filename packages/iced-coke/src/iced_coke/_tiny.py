"""A tiny offline SDXL base + img2img refiner (shared components, Euler "leading" as SDXL ships) for
``--model tiny-sdxl``, tests and the benchmark, until `gen_common.testing.sdxl_tiny` is available."""

from __future__ import annotations

from typing import Any

__all__ = ["tiny_sdxl_pipelines"]


def _tiny_sdxl(seed: int = 0) -> Any:
    """A tiny SDXL base (two text encoders, text-time conditioning, Euler "leading" as SDXL ships) until
    `gen_common.testing.sdxl_tiny` lands."""
    import diffusers
    import transformers

    from gen_common.testing.diffusers_tiny import _seeded_build, clip_tokenizer, tiny_vae

    cfg = transformers.CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )  # fmt: skip
    with _seeded_build(seed):
        te1 = transformers.CLIPTextModel(cfg).eval()
        te2 = transformers.CLIPTextModelWithProjection(cfg).eval()
        unet = diffusers.UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
            norm_num_groups=32,
        ).eval()  # fmt: skip
    sched = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    tok = clip_tokenizer()
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=tiny_vae(seed), text_encoder=te1, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok, unet=unet,
        scheduler=sched,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_sdxl_refiner(base: Any) -> Any:
    import diffusers

    comps = {k: v for k, v in base.components.items()}
    ref = diffusers.StableDiffusionXLImg2ImgPipeline(**comps, requires_aesthetics_score=False)
    ref.set_progress_bar_config(disable=True)
    return ref


def tiny_sdxl_pipelines(seed: int = 0) -> tuple[Any, Any]:
    base = _tiny_sdxl(seed)
    return base, _tiny_sdxl_refiner(base)
