import json

import pytest
import torch

from gen_common import CharTokenizer, DemoResult, Table, bundled_corpus, random_windows, split_tokens
from gen_common.demo import render_html


def test_corpus_is_offline_and_large():
    text = bundled_corpus()
    assert len(text) > 300_000
    assert bundled_corpus(1000) == text[:1000]


def test_tokenizer_round_trip_and_errors(tmp_path):
    tok = CharTokenizer.from_text("hello world")
    ids = tok.encode("hold the door".replace("t", "l").replace("a", "o")[:4])
    assert tok.decode(ids) == "hold"
    with pytest.raises(ValueError, match="not in the tokenizer"):
        tok.encode("xyz")
    assert tok.decode(tok.encode("hex", errors="replace")) == "he "
    tok.save(tmp_path / "tok.json")
    assert CharTokenizer.load(tmp_path / "tok.json").alphabet == tok.alphabet
    assert tok.decode([0, tok.vocab_size]) == tok.alphabet[0] + "_"


def test_windows_are_contiguous_slices():
    ids = torch.arange(100)
    w = random_windows(ids, 8, 10, torch.Generator().manual_seed(0))
    assert w.shape == (8, 10)
    assert torch.equal(w - w[:, :1], torch.arange(10).expand(8, 10))
    tr, va = split_tokens(ids, 0.2)
    assert len(tr) == 80 and va[0] == 80
    with pytest.raises(ValueError, match="shorter"):
        random_windows(ids[:5], 2, 10)


def test_report_renders(tmp_path):
    res = DemoResult("t", "s", {"x": 1.5}, [Table("tab", ["a"], [[1]])], [tmp_path / "f.png"])
    page = render_html(
        {"demo": {"status": "ok", "seconds": 1.0, **res.to_json()}}, {"device": "cpu"}, tmp_path
    )
    assert "<table>" in page and "f.png" in page and "tab" in page
    json.dumps(res.to_json())
    empty = render_html({}, {}, tmp_path)
    assert "No demos are installed" in empty


def test_report_leads_with_the_headline_table(tmp_path):
    head = {"claim": "c1", "paper": "3.5×", "measured": "1.6×", "reproduces": True, "reason": ""}
    res = DemoResult(
        "T", "s", {"gap": None, "x": float("nan")}, [Table("tab", ["a", "b"], [[None, 2]])],
        [tmp_path / "d" / "quality_vs_nfe.png"], headline=head, captions={"quality_vs_nfe.png": "look at 10 NFE"},
    )  # fmt: skip
    no = DemoResult("U", "s", headline={**head, "reproduces": False, "reason": "too small"})
    na = DemoResult("V", "s", headline={**head, "reproduces": None, "reason": "needs weights"})
    results = {
        "alpha": {"status": "ok", "seconds": 2.0, **res.to_json()},
        "beta": {"status": "ok", "seconds": 1.0, **no.to_json()},
        "gamma": {"status": "ok", "seconds": 1.0, **na.to_json()},
        "delta": {"status": "failed", "seconds": 1.0, "error": "boom", "title": "delta"},
    }
    meta = {
        "device": {"device": "cpu", "torch": "2.9", "threads": 2},
        "scale": "small",
        "seed": 0,
        "seconds": 5.0,
    }
    page = render_html(results, meta, tmp_path)
    summary = page.index("class='summary'")
    assert summary < page.index("<section"), "the summary table comes before the details"
    row = page[summary:].split("</tr>")[1]
    assert "c1" in row and "3.5×" in row and "1.6×" in row and "class='yes'>yes" in row
    assert (
        "class='no'>no" in page
        and "too small" in page
        and "not testable here" in page
        and "needs weights" in page
    )
    assert "class='fail'>failed" in page
    assert "None" not in page and "nan" not in page.lower().replace("nans", ""), "empty cells are blank"
    assert "<figcaption>look at 10 NFE</figcaption>" in page
    assert "Settings: device cpu (torch 2.9, 2 threads) · scale small · seed 0 · 4 demo(s) in 5 s" in page
    assert "{" not in page.split("<body>")[1].split("<section")[0], "no raw JSON in the header"
    with pytest.raises(ValueError, match="unknown headline key"):
        DemoResult("t", "s", headline={"claims": "typo"})
