"""gen_common: the small shared core of the gen-papers workspace.

Device/dtype/seed handling, safe checkpoint I/O, `save_pretrained`/`from_pretrained`, CLI and progress helpers,
PNG plots, benchmarks with in-run baselines, one training loop, offline text, and the tour's demo contract.
A package's own algorithm never lives here.
"""

from gen_common.atomic import atomic_path, atomic_write, atomic_write_json, atomic_write_text
from gen_common.bench import BenchResult, NFECounter, compare, time_call
from gen_common.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    OfflineError,
    is_offline,
    load_state_dict,
    load_torch_file,
    resolve_pretrained,
    save_state_dict,
)
from gen_common.cli import add_common_args, emit, format_table, progress, progress_enabled, run_cli
from gen_common.config import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    read_json,
    save_config,
)
from gen_common.demo import DemoContext, DemoResult, Table, discover_demos
from gen_common.device import (
    DeviceUnavailableError,
    autocast,
    device_summary,
    num_threads,
    resolve_device,
    resolve_dtype,
    synchronize,
)
from gen_common.jsonio import to_jsonable
from gen_common.plotting import new_figure, save_figure
from gen_common.pretrained import PretrainedMixin, load_into, prepare_output_dir
from gen_common.seeding import make_generator, rand, randint, randn, seed_everything, split_seed
from gen_common.text import CharTokenizer, bundled_corpus, random_windows, split_tokens

__version__ = "0.1.0"

__all__ = [
    "BenchResult",
    "CharTokenizer",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "DemoContext",
    "DemoResult",
    "DeviceUnavailableError",
    "NFECounter",
    "OfflineError",
    "PretrainedMixin",
    "Table",
    "add_common_args",
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
]
