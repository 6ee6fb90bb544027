"""gen_common.testing: the asserts fail when they should, and the pytest plugin's markers do what they say."""

import pytest
import torch

from gen_common.testing import assert_close, assert_within_sigmas, seeded, single_thread

pytest_plugins = ["pytester"]


def test_assert_close_tolerances_and_message():
    assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-9])
    assert_close([100.0], [101.0], rtol=0.011)
    with pytest.raises(
        AssertionError, match=r"1/2 elements differ; worst at flat index 1: actual 2\.5 vs expected 2 "
    ):
        assert_close(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]), rtol=0, atol=0.05)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.zeros(2), torch.zeros(3))
    with pytest.raises(AssertionError, match="differ"):
        assert_close(torch.tensor([float("nan")]), torch.tensor([0.0]), atol=1.0)


def test_assert_within_sigmas():
    assert_within_sigmas(1.04, 1.0, stderr=0.01)
    with pytest.raises(AssertionError, match="differs"):
        assert_within_sigmas(1.06, 1.0, stderr=0.01)
    with pytest.raises(AssertionError, match="nan"):
        assert_within_sigmas(float("nan"), 1.0, stderr=1.0)


def test_seeded_and_single_thread():
    assert torch.equal(torch.rand(5, generator=seeded(3)), torch.rand(5, generator=seeded(3)))
    assert not torch.equal(torch.rand(5, generator=seeded(3)), torch.rand(5, generator=seeded(4)))
    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


PLUGIN_PROBE = """
    import os
    import pytest
    import torch

    def test_plain():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["GEN_OFFLINE"] == "1"
        assert torch.get_num_threads() == 1

    @pytest.mark.gpu
    def test_gpu():
        pass

    @pytest.mark.slow
    def test_slow():
        pass
"""


@pytest.mark.parametrize(
    ("args", "env", "outcome"),
    [
        ([], {}, {"passed": 1, "skipped": 2}),
        (["--run-slow"], {}, {"passed": 2, "skipped": 1}),
        ([], {"GEN_RUN_SLOW": "1"}, {"passed": 2, "skipped": 1}),
    ],
)
def test_plugin_skips_gpu_without_cuda_and_makes_slow_opt_in(pytester, monkeypatch, args, env, outcome):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for var in ("HF_HUB_OFFLINE", "GEN_OFFLINE", "GEN_RUN_SLOW"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("GEN_TEST_THREADS", "1")
    pytester.makepyfile(test_probe=PLUGIN_PROBE)
    before = torch.get_num_threads()
    try:
        res = pytester.runpytest_inprocess(
            "-p", "gen_common.testing.pytest_plugin", "--strict-markers", "-rs", *args
        )
    finally:
        torch.set_num_threads(before)
    res.assert_outcomes(**outcome)
    res.stdout.fnmatch_lines(["*needs CUDA (gpu marker)*"])


def test_run_readme_example_runs_the_chosen_block(tmp_path):
    from gen_common.testing import readme_python_blocks, run_readme_example

    readme = tmp_path / "README.md"
    readme.write_text("# x\n```python\nx = 1 + 1\n```\ntext\n```bash\nls\n```\n```python\ny = 3\n```\n")
    assert readme_python_blocks(readme) == ["x = 1 + 1\n", "y = 3\n"]
    assert run_readme_example(readme)["x"] == 2 and run_readme_example(readme, block=1)["y"] == 3
    with pytest.raises(AssertionError, match="lost its python example"):
        run_readme_example(readme, block=2)
    bad = tmp_path / "BAD.md"
    bad.write_text("```python\nraise ValueError('boom')\n```\n")
    with pytest.raises(ValueError, match="boom") as err:
        run_readme_example(bad)
    assert any(str(bad) == str(tb.path) for tb in err.traceback)  # the traceback names the README
