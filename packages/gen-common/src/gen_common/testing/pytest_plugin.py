"""pytest plugin for the workspace (loaded with ``-p gen_common.testing.pytest_plugin`` from the root config).

- ``gpu`` tests skip without CUDA; ``slow`` tests run only with ``--run-slow`` or ``GEN_RUN_SLOW=1``;
- the hubs are switched offline for the whole session, so no test can download;
- torch runs single-threaded unless ``GEN_TEST_THREADS`` says otherwise.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gen_common")
    group.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped when no CUDA device is present")
    config.addinivalue_line("markers", "slow: opt-in; run with --run-slow or GEN_RUN_SLOW=1")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "GEN_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(int(os.environ.get("GEN_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    run_slow = config.getoption("--run-slow") or os.environ.get("GEN_RUN_SLOW", "") not in ("", "0")
    has_cuda = torch.cuda.is_available()
    skip_gpu = pytest.mark.skip(reason="needs CUDA (gpu marker)")
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow or GEN_RUN_SLOW=1")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
