"""gen_common: the small shared core of the gen-papers workspace.

Device/dtype/seed handling, safe checkpoint I/O, `save_pretrained`/`from_pretrained`, CLI and progress helpers,
PNG plots, benchmarks with in-run baselines, one training loop, offline text, and the tour's demo contract.
A package's own algorithm never lives here.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Names are imported on first use (PEP 562), so that `import gen_common.cli` and a console script's `--help` do not
# import torch.
_LAZY = {
    "main_for": "cli",
    "RunContext": "cli",
    "Command": "cli",
    "validate": "config",
    "arg": "config",
    "TrainConfig": "config",
    "BenchResult": "bench",
    "CharTokenizer": "text",
    "CheckpointError": "checkpoint",
    "CheckpointNotFoundError": "checkpoint",
    "ConfigError": "config",
    "DemoContext": "demo",
    "DemoResult": "demo",
    "DeviceUnavailableError": "device",
    "NFECounter": "bench",
    "OfflineError": "checkpoint",
    "PretrainedMixin": "pretrained",
    "Table": "demo",
    "add_common_args": "cli",
    "atomic_path": "atomic",
    "atomic_write": "atomic",
    "atomic_write_json": "atomic",
    "atomic_write_text": "atomic",
    "autocast": "device",
    "bundled_corpus": "text",
    "compare": "bench",
    "config_from_dict": "config",
    "config_to_dict": "config",
    "device_summary": "device",
    "discover_demos": "demo",
    "emit": "cli",
    "format_table": "cli",
    "is_offline": "checkpoint",
    "load_config": "config",
    "load_into": "pretrained",
    "load_state_dict": "checkpoint",
    "load_torch_file": "checkpoint",
    "make_generator": "seeding",
    "new_figure": "plotting",
    "num_threads": "device",
    "prepare_output_dir": "pretrained",
    "progress": "cli",
    "progress_enabled": "cli",
    "rand": "seeding",
    "randint": "seeding",
    "randn": "seeding",
    "random_windows": "text",
    "read_json": "config",
    "resolve_device": "device",
    "resolve_dtype": "device",
    "resolve_pretrained": "checkpoint",
    "run_cli": "cli",
    "save_config": "config",
    "save_figure": "plotting",
    "save_state_dict": "checkpoint",
    "seed_everything": "seeding",
    "split_seed": "seeding",
    "split_tokens": "text",
    "synchronize": "device",
    "time_call": "bench",
    "to_jsonable": "jsonio",
}

__all__ = [
    "BenchResult",
    "CharTokenizer",
    "CheckpointError",
    "CheckpointNotFoundError",
    "Command",
    "ConfigError",
    "DemoContext",
    "DemoResult",
    "DeviceUnavailableError",
    "NFECounter",
    "OfflineError",
    "PretrainedMixin",
    "RunContext",
    "Table",
    "TrainConfig",
    "add_common_args",
    "arg",
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "autocast",
    "bundled_corpus",
    "compare",
    "config_from_dict",
    "config_to_dict",
    "device_summary",
    "discover_demos",
    "emit",
    "format_table",
    "is_offline",
    "load_config",
    "load_into",
    "load_state_dict",
    "load_torch_file",
    "main_for",
    "make_generator",
    "new_figure",
    "num_threads",
    "prepare_output_dir",
    "progress",
    "progress_enabled",
    "rand",
    "randint",
    "randn",
    "random_windows",
    "read_json",
    "resolve_device",
    "resolve_dtype",
    "resolve_pretrained",
    "run_cli",
    "save_config",
    "save_figure",
    "save_state_dict",
    "seed_everything",
    "split_seed",
    "split_tokens",
    "synchronize",
    "time_call",
    "to_jsonable",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gen_common' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gen_common.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
