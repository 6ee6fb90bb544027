"""ConceptPair JSON I/O: the official prompt.json, Level-5 style files, JSON Lines, and one-line errors."""

from __future__ import annotations

import json

import pytest
from iced_coke.pairs import FIELDS, ConceptPair, PairFileError, load_pairs, save_pairs

OFFICIAL = {
    "prompt0": {
        "prompt": "A tea cup of iced coke.",
        "first_prompt": "tea cup",
        "first_describe": "Small, handle-equipped ceramic vessel.",
        "second_prompt": "iced coke",
        "second_describe": "A dark brown liquid containing ice cubes.",
    }
}


def _pair(i: int = 0, **extra) -> dict:
    d = {f: f"{f} {i}" for f in FIELDS}
    d.update(extra)
    return d


def test_official_prompt_json_round_trip(tmp_path):
    p = tmp_path / "prompt.json"
    p.write_text(json.dumps(OFFICIAL, indent=4))
    pairs = load_pairs(p)
    assert len(pairs) == 1
    assert pairs[0].first_prompt == "tea cup" and pairs[0].second_describe.startswith("A dark brown")
    out = save_pairs(pairs, tmp_path / "again.json")
    assert json.loads(out.read_text()) == OFFICIAL


def test_file_order_and_extra_fields_survive(tmp_path):
    data = {f"prompt{i}": _pair(i, level=5) for i in (2, 0, 1)}
    (tmp_path / "p.json").write_text(json.dumps(data))
    pairs = load_pairs(tmp_path / "p.json")
    assert [q.prompt for q in pairs] == ["prompt 2", "prompt 0", "prompt 1"]
    assert pairs[0].extra == {"level": 5}
    save_pairs(pairs, tmp_path / "p.jsonl")
    again = load_pairs(tmp_path / "p.jsonl")
    assert again == pairs and again[1].to_dict()["level"] == 5


def test_level5_layouts_list_and_patterns(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([_pair(0), _pair(1)]))
    assert [q.prompt for q in load_pairs(tmp_path / "a.json")] == ["prompt 0", "prompt 1"]
    (tmp_path / "b.json").write_text(json.dumps({"Pattern A": [_pair(0)], "Pattern B": [_pair(1), _pair(2)]}))
    got = load_pairs(tmp_path / "b.json")
    assert [q.extra["pattern"] for q in got] == ["Pattern A", "Pattern B", "Pattern B"]
    alias = {
        "prompt": "x",
        "first_concept": "a",
        "first_description": "A",
        "second_concept": "b",
        "second_description": "B",
    }
    (tmp_path / "c.json").write_text(json.dumps([alias]))
    assert load_pairs(tmp_path / "c.json")[0] == ConceptPair("x", "a", "A", "b", "B")


@pytest.mark.parametrize("missing", FIELDS)
def test_missing_field_is_a_one_line_error_naming_it(tmp_path, missing):
    d = _pair(0)
    del d[missing]
    (tmp_path / "p.json").write_text(json.dumps({"prompt0": d}))
    with pytest.raises(PairFileError) as e:
        load_pairs(tmp_path / "p.json")
    msg = str(e.value)
    assert "\n" not in msg and missing in msg and "prompt0" in msg


def test_bad_files(tmp_path):
    with pytest.raises(PairFileError, match="not found"):
        load_pairs(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PairFileError, match="not valid JSON"):
        load_pairs(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(PairFileError, match="no concept pairs"):
        load_pairs(tmp_path / "empty.json")
    (tmp_path / "blank.json").write_text(json.dumps([_pair(0, first_prompt=" ")]))
    with pytest.raises(PairFileError, match="first_prompt"):
        load_pairs(tmp_path / "blank.json")


def test_slug_is_filesystem_safe():
    q = ConceptPair.from_dict(OFFICIAL["prompt0"])
    assert q.slug == "a_tea_cup_of_iced_coke"
