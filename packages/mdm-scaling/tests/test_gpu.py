"""CUDA paths: bf16 autocast, the KV cache on the device, radd sampling with CFG, compiled training."""

import math

import pytest
import torch
from mdm_scaling.config import ModelConfig
from mdm_scaling.data import make_batch_fn
from mdm_scaling.generation import arm_generate, mdm_generate
from mdm_scaling.model import AutoregressiveLM, MaskedDiffusionLM
from mdm_scaling.training import paper_config, train_lm

from gen_common.testing import assert_close

pytestmark = pytest.mark.gpu
CFG = ModelConfig(vocab_size=50, n_layer=2, n_head=4, n_embd=64, intermediate_size=128, block_size=128)


def test_kv_cache_parity_on_cuda_fp32_and_bf16():
    torch.manual_seed(0)
    arm = AutoregressiveLM(CFG).cuda().eval()
    prompt = torch.randint(0, 50, (4, 8), device="cuda")
    a = arm_generate(arm, prompt, 32, temperature=0.0, cache=True, return_logits=True)
    b = arm_generate(arm, prompt, 32, temperature=0.0, cache=False, return_logits=True)
    assert torch.equal(a.tokens, b.tokens)
    assert_close(a.logits, b.logits, rtol=1e-3, atol=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        c = arm_generate(arm, prompt, 32, temperature=0.0, cache=True)
    assert c.tokens.shape == (4, 40)


def test_mdm_sampling_with_cfg_on_cuda_matches_cpu_noise():
    torch.manual_seed(0)
    mdm = MaskedDiffusionLM(CFG).eval()
    p = torch.tensor([1, 2, 3])
    cpu = mdm_generate(mdm, p, 24, 8, cfg=0.5, generator=torch.Generator().manual_seed(0), num_samples=3)
    gpu = mdm_generate(
        mdm.cuda(), p.cuda(), 24, 8, cfg=0.5, generator=torch.Generator().manual_seed(0), num_samples=3
    )
    # noise is drawn on the CPU generator, so the device only changes floating point details
    assert (cpu.tokens == gpu.tokens.cpu()).float().mean() > 0.9


def test_bf16_compiled_training_step():
    ids = torch.randint(0, 50, (2000,))
    m = MaskedDiffusionLM(CFG)
    r = train_lm(
        m,
        make_batch_fn(ids, 8, 32),
        paper_config(steps=5, lr=1e-3),
        device="cuda",
        compile=True,
        progress=False,
    )
    assert math.isfinite(r.final_loss)
    assert next(m.parameters()).is_cuda
