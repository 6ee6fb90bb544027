"""The LoRA conversion trap the issue names, reproduced with the installed peft and diffusers.

The route diffusers' LoRA training scripts document (``train_text_to_image_lora.py``: ``unet_lora_state_dict =
convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))``, then ``StableDiffusionPipeline.
save_lora_weights(dir, unet_lora_layers=...)``, then ``pipe.load_lora_weights(dir)``) silently loses every attention
LoRA when the release's conv/resnet targets are mixed in: the converter renames only the attention keys
(``to_q.lora_A`` -> ``to_q.lora.down``), the loader then sees peft keys (``lora_A``) beside them, takes the file for
peft format and drops the renamed ones, with only peft's "inconsistency" RuntimeWarning. Measured on the tiny UNet
(peft 0.21.2, diffusers 0.42.1): 194 tensors saved, 98 loaded back (all 96 attention tensors lost). `longalign.lora.save_lora` keeps
peft keys (plus the adapter config) and `load_lora` counts that every tensor lands.
"""

from __future__ import annotations

import pytest
import torch
from longalign.lora import LoraSpec, add_lora, load_lora, lora_parameters, save_lora
from safetensors import safe_open

from .test_lora import fresh_pipe, randomise_up, unet_out


def _count(path):
    with safe_open(str(path), "pt") as fh:
        return len(list(fh.keys()))


def test_documented_conversion_drops_attention_loras_ours_keeps_all(tmp_path):
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    pipe = fresh_pipe()
    add_lora(pipe.unet, LoraSpec(rank=4, dropout=0.0))
    randomise_up(pipe.unet)
    pipe.unet.eval()
    ref = unet_out(pipe.unet)
    peft_sd = get_peft_model_state_dict(pipe.unet)
    n_in = len(peft_sd)
    n_attn = sum(".attn" in k for k in peft_sd)
    assert n_in == len(lora_parameters(pipe.unet)) and n_attn > 0 and n_attn < n_in  # mixed targets

    # the documented route
    StableDiffusionPipeline.save_lora_weights(
        tmp_path / "documented",
        unet_lora_layers=convert_state_dict_to_diffusers(peft_sd),
        safe_serialization=True,
    )
    assert _count(tmp_path / "documented" / "pytorch_lora_weights.safetensors") == n_in  # all saved...
    documented = fresh_pipe()
    with pytest.warns(RuntimeWarning, match="inconsistency"):  # all the user is told: a warning, no error
        documented.load_lora_weights(tmp_path / "documented")
    documented.unet.eval()
    back = {n for n, _ in documented.unet.named_parameters() if "lora_" in n}
    assert len(back) == n_in - n_attn  # ...but every attention LoRA is lost on reload
    assert not any(".attn" in n for n in back)
    assert (unet_out(documented.unet) - ref).abs().max() > 1e-2  # and the outputs differ

    # ours: every tensor reloads, identical outputs
    path = save_lora(pipe.unet, tmp_path / "ours")
    assert _count(path) == n_in
    ours = load_lora(fresh_pipe(), tmp_path / "ours")
    assert len(lora_parameters(ours.unet)) == n_in
    torch.testing.assert_close(unet_out(ours.unet), ref, atol=0, rtol=0)
