import random

import numpy as np
import pytest
import torch

from gen_common import (
    DeviceUnavailableError,
    autocast,
    make_generator,
    rand,
    randint,
    randn,
    resolve_device,
    resolve_dtype,
    seed_everything,
    split_seed,
)


def test_auto_device_matches_availability():
    dev = resolve_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else dev.type)
    assert resolve_device(None) == dev
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")).type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda:0")
    # Also a ValueError, so that every console script reports it in one line (run_cli) instead of a traceback.
    with pytest.raises(ValueError, match="use --device cpu or auto"):
        resolve_device("cuda")
    with pytest.raises(DeviceUnavailableError):
        resolve_device("cuda:1")


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")


def test_dtype_resolution():
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype(torch.float64) is torch.float64
    assert resolve_dtype(None, "cpu") is torch.float32
    with pytest.raises(ValueError, match="float16 is not supported on the CPU"):
        resolve_dtype("fp16", "cpu")
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int3")


def test_autocast_is_a_noop_for_cpu_float32():
    a = torch.randn(8, 8)
    with autocast("cpu", None):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ a).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16


def test_generators_reproduce_and_move():
    x = randn((3, 4), make_generator(7), device="cpu")
    y = randn((3, 4), make_generator(7))
    assert torch.equal(x, y)
    assert not torch.equal(x, randn((3, 4), make_generator(8)))
    u = rand((1000,), make_generator(1))
    assert u.min() >= 0 and u.max() < 1
    k = randint(2, 5, (1000,), make_generator(1))
    assert set(k.unique().tolist()) == {2, 3, 4}


def test_split_seed_is_deterministic_and_spreads():
    assert split_seed(1, 2) == split_seed(1, 2)
    seeds = {split_seed(0, step) for step in range(1000)}
    assert len(seeds) == 1000
    assert split_seed(0, 1, 2) != split_seed(0, 2, 1)
    # No additive collisions between neighbouring (seed, key) pairs, nor between key tuples of different length.
    grid = {split_seed(s, k) for s in range(50) for k in range(50)}
    assert len(grid) == 2500
    assert split_seed(3) != split_seed(3, 0)
    assert all(0 <= s < 2**63 for s in seeds)


def test_num_threads_restores():
    from gen_common import num_threads

    before = torch.get_num_threads()
    with num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with num_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        num_threads(0).__enter__()


def test_noise_is_drawn_on_the_generator_device_then_moved():
    gen_a, gen_b = make_generator(5), make_generator(5)
    direct = torch.randn((2, 3), generator=gen_a)
    moved = randn((2, 3), gen_b, device="meta", dtype=torch.float64)
    assert moved.device.type == "meta" and moved.dtype == torch.float64
    # the draw consumed the CPU generator exactly like a CPU draw of the same shape
    assert torch.equal(torch.randn(4, generator=gen_a), torch.randn(4, generator=gen_b))
    assert torch.equal(randn((2, 3), make_generator(5)), direct)


@pytest.mark.gpu
def test_same_seed_same_numbers_on_cuda():
    cpu = randn((64,), make_generator(11))
    gpu = randn((64,), make_generator(11), device="cuda")
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    assert torch.equal(
        randint(0, 9, (32,), make_generator(2), device="cuda").cpu(), randint(0, 9, (32,), make_generator(2))
    )
    assert resolve_dtype(None, "cuda") in (torch.bfloat16, torch.float32)
    with autocast("cuda", "bf16"):
        a = torch.randn(8, 8, device="cuda")
        assert (a @ a).dtype == torch.bfloat16


def test_seed_everything_reseeds_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002 - the global state is the point

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert all(a != b for a, b in zip(draw(), first))
