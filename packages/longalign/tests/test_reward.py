from __future__ import annotations

import pytest
import torch
from longalign import DecomposedPreference, SegmentEncoder
from longalign.lora import LoraSpec, add_lora
from longalign.reward import RewardConfig, RewardObjective, ddim_grid, gradient_steps, reward_rollout
from longalign.training import train_reward

from gen_common.training import TrainConfig

PROMPTS = ["A red house on a hill. The sky is blue.", "Two black cats. One sleeps on a green sofa."]


def fresh_pipe():
    from longalign.toys import tiny_sd_pipeline

    return tiny_sd_pipeline(seed=0)


def test_grid_and_gradient_steps():
    grid = ddim_grid()
    assert grid[:3] == [999, 979, 959] and grid[-1] == 19 and len(grid) == 50
    assert gradient_steps(grid, 0) == [999, 799, 599, 399, 199]
    assert gradient_steps(grid, 9) == [819, 619, 419, 219, 19]
    with pytest.raises(ValueError):
        gradient_steps(grid, 10)


class _Tap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t, log):
        ctx.t, ctx.log = t, log
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        ctx.log.append(ctx.t)
        return g, None, None


class ToyUNet(torch.nn.Module):
    """ε = θ · x + c(t): a closed-form stand-in with one parameter; records which steps run backward."""

    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor(0.3))
        self.back: list[int] = []
        self.inputs_require_grad: list[bool] = []

    def forward(self, x, t, ehs):
        self.inputs_require_grad.append(x.requires_grad)
        out = self.theta * x + 0.01 * ehs.mean() + t.float().view(-1, 1, 1, 1) * 1e-4
        return _Tap.apply(out, int(t[0]), self.back) if torch.is_grad_enabled() else out


@pytest.mark.parametrize("use_checkpoint", [True, False])
def test_exactly_the_chosen_steps_run_backward(use_checkpoint):
    from diffusers import DDIMScheduler

    ac = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
    unet = ToyUNet()
    noise = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    cond, uncond = torch.randn(2, 5, 8), torch.zeros(2, 5, 8)
    chosen = gradient_steps(ddim_grid(), 3)
    x0 = reward_rollout(unet, ac, cond, uncond, noise, grad_at=chosen, use_checkpoint=use_checkpoint)
    x0.square().sum().backward()
    assert sorted(unet.back) == sorted(chosen)
    assert not any(unet.inputs_require_grad)  # the UNet never sees the graph
    assert unet.theta.grad is not None and float(unet.theta.grad.abs()) > 0
    with torch.no_grad():
        x0_ng = reward_rollout(unet, ac, cond, uncond, noise, grad_at=[])
    torch.testing.assert_close(x0.detach(), x0_ng)


def test_ddim_arithmetic_matches_closed_form():
    """With ε ≡ e constant, DDIM keeps x̂₀ = (x_t − σ_t e)/α_t exact along the chain: the last x̂₀ is
    (x_T − σ_999 e)/α_999 regardless of the steps in between."""
    from diffusers import DDIMScheduler

    ac = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
    e = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    unet = lambda x, t, ehs: e.expand(x.shape[0], -1, -1, -1)  # noqa: E731
    x0 = reward_rollout(unet, ac, torch.zeros(1, 3, 4), torch.zeros(1, 3, 4), noise, grad_at=[])
    want = (noise - (1 - ac[999]).sqrt() * e) / ac[999].sqrt()
    torch.testing.assert_close(x0, want, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def objective_setup():
    from longalign.toys import tiny_tokenizer as clip_tokenizer  # cached: building parses 49k merges

    from gen_common.testing.clip_tiny import tiny_clip_model

    pipe = fresh_pipe()
    add_lora(pipe.unet, LoraSpec(rank=4))
    pref = DecomposedPreference(tiny_clip_model(seed=0), clip_tokenizer(), image_size=32)
    return pipe, pref


@pytest.mark.parametrize("sampler", ["ddim", "lcm"])
def test_only_lora_parameters_get_gradients(objective_setup, sampler):
    pipe, pref = objective_setup
    cfg = RewardConfig(batch_size=2, stride=100, grad_every=5, sampler=sampler)
    obj = RewardObjective(pipe, SegmentEncoder.from_pipe(pipe), pref, cfg).train()
    batch = obj.make_batch(PROMPTS, 0, torch.Generator().manual_seed(0))
    loss, metrics = obj(batch, torch.Generator().manual_seed(0))
    loss.backward()
    with_grad = [n for n, p in obj.named_parameters() if p.grad is not None]
    assert with_grad and all("lora_" in n for n in with_grad)
    # up = 0 at init, so only the up (lora_B) weights get a non-zero gradient on the first step
    assert any(float(p.grad.abs().max()) > 0 for n, p in obj.named_parameters() if "lora_B" in n)
    assert set(obj.state_dict()) == {n for n, p in obj.named_parameters() if "lora_" in n}
    assert abs(metrics["score"] - (metrics["relevant"] + 0.3 * metrics["irrelevant"])) < 1e-5
    obj.zero_grad(set_to_none=True)


def test_a_few_steps_raise_the_score(objective_setup):
    pipe, pref = objective_setup
    cfg = RewardConfig(batch_size=2, stride=100, grad_every=5, unet_checkpointing=False)
    obj = RewardObjective(pipe, SegmentEncoder.from_pipe(pipe), pref, cfg).train()
    params = [p for p in obj.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=2e-3)
    batch = obj.make_batch(PROMPTS, 0, torch.Generator().manual_seed(5))
    scores = []
    for _ in range(4):
        loss, m = obj(batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        scores.append(m["score"])
    assert scores[-1] > scores[0] + 1e-4, scores


@pytest.mark.filterwarnings("ignore:batch of 1")
def test_train_reward_resumes_exactly(tmp_path):
    from longalign.toys import tiny_tokenizer as clip_tokenizer  # cached: building parses 49k merges

    from gen_common.testing.clip_tiny import tiny_clip_model

    def run(out, stop_after=None):
        torch.manual_seed(0)  # LoRA dropout draws from the global RNG, which checkpoints save and restore
        pipe = fresh_pipe()
        pref = DecomposedPreference(tiny_clip_model(seed=0), clip_tokenizer(), image_size=32)
        cfg = TrainConfig(steps=2, lr=1e-3, weight_decay=1e-2, grad_clip=0.3, log_every=1, seed=0)
        return train_reward(
            pipe,
            PROMPTS,
            pref,
            reward=RewardConfig(batch_size=1, stride=200, grad_every=2, unet_checkpointing=False),
            lora=LoraSpec(rank=4, dropout=0.1),
            config=cfg,
            out_dir=out,
            device="cpu",
            progress=False,
            stop_after=stop_after,
        )

    obj, res = run(tmp_path / "a")
    assert len(res.history) == 2 and all("score" in h for h in res.history)
    run(tmp_path / "b", stop_after=1)
    obj_b, res_b = run(tmp_path / "b")
    assert res_b.resumed_from == 1
    for k, v in obj.state_dict().items():
        torch.testing.assert_close(obj_b.state_dict()[k], v, atol=0, rtol=0)


def test_lcm_variant_runs_backward_at_all_four_steps():
    from diffusers import DDIMScheduler
    from longalign.reward import LCM_TIMESTEPS, lcm_rollout

    ac = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
    unet = ToyUNet()
    g = torch.Generator().manual_seed(0)
    noise, renoise = torch.randn(2, 4, 3, 3, generator=g), torch.randn(3, 2, 4, 3, 3, generator=g)
    x0 = lcm_rollout(unet, ac, torch.randn(2, 5, 8), noise, renoise)
    x0.square().sum().backward()
    assert sorted(unet.back) == sorted(LCM_TIMESTEPS) and not any(unet.inputs_require_grad)
    # the last x̂₀ comes from the last step's input, which is x̂₀ of the previous step re-noised to t = 249
    assert x0.shape == noise.shape and float(unet.theta.grad.abs()) > 0
