import pytest
import torch

from gen_common import (
    autocast,
    make_generator,
    rand,
    randint,
    randn,
    resolve_device,
    resolve_dtype,
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
