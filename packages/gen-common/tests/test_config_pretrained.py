import json
from dataclasses import dataclass

import pytest
import torch

from gen_common import (
    CheckpointError,
    ConfigError,
    PretrainedMixin,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    depth: int = 2
    scale: float = 1.0
    sizes: tuple[int, ...] = (1, 2)
    name: str | None = None


class Tiny(PretrainedMixin, torch.nn.Module):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(config.width, config.width) for _ in range(config.depth)
        )


class Other(Tiny):
    pass


def test_config_round_trip_and_coercion(tmp_path):
    cfg = TinyConfig(width=8, sizes=(3, 4, 5), scale=2)
    assert config_from_dict(TinyConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    save_config(cfg, tmp_path / "c.json", note="meta")
    assert load_config(TinyConfig, tmp_path / "c.json") == cfg


def test_unknown_config_key_suggests(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        config_from_dict(TinyConfig, {"widht": 3})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(TinyConfig, tmp_path / "bad.json")


def test_save_and_load_pretrained(tmp_path):
    torch.manual_seed(0)
    m = Tiny(TinyConfig(width=3, depth=3))
    m.save_pretrained(tmp_path / "m")
    back = Tiny.from_pretrained(tmp_path / "m")
    assert back.config == m.config
    for a, b in zip(m.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    assert not back.training


def test_existing_checkpoint_is_not_overwritten(tmp_path):
    m = Tiny(TinyConfig())
    m.save_pretrained(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite"):
        m.save_pretrained(tmp_path / "m")
    m.save_pretrained(tmp_path / "m", overwrite=True)


def test_config_weights_mismatch_is_readable(tmp_path):
    Tiny(TinyConfig(width=4)).save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["width"] = 5
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        Tiny.from_pretrained(tmp_path / "m")


def test_wrong_class_is_refused(tmp_path):
    Tiny(TinyConfig()).save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="holds a Tiny, not a Other"):
        Other.from_pretrained(tmp_path / "m")
