"""Zero-shot benchmarks: the detokenisers (known pairs, and side by side with the official functions when the
official checkout is present), every file format, the official chunking, and `radd eval --benchmark`."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import torch
from radd.cli import main
from radd.zeroshot import (
    BENCHMARKS,
    benchmark_windows,
    lambada_detokenize,
    lm1b_detokenize,
    official_chunks,
    ptb_detokenize,
    read_examples,
    wikitext_detokenize,
)

PAIRS = [
    (wikitext_detokenize, " = Valkyria Chronicles III = \n", " = Valkyria Chronicles III =\n"),
    (
        wikitext_detokenize,
        ' The game @-@ play , 1 @,@ 000 and 3 @.@ 5 km ( about 2 mi ) " quoted " ; ok : yes . Done ! Why ? \n',
        ' The game-play, 1,000 and 3.5 km (about 2 mi) "quoted"; ok: yes. Done! Why?\n',
    ),
    (wikitext_detokenize, " = = Reception = = \n", " == Reception ==\n"),
    (
        wikitext_detokenize,
        " Temperature 5 \u00b0 C , N people 's cars '",
        " Temperature 5\u00b0C, 1 people's cars'",
    ),
    (
        ptb_detokenize,
        " the company 's N N shares were n't sold at $ N <unk> \\/ the investors ' money \n here",
        " the company's 1 1 shares weren't sold at $1 ? / the investors' money\nhere",
    ),
    (
        lm1b_detokenize,
        'See http : / / example.com , he said " yes " ( maybe ) [ 1 ] ; cost $ 5 and \u00a3 3 / year : ok ? Yes !',
        'See http://example.com, he said "yes" (maybe) [1]; cost $5 and \u00a33/year: ok? Yes!',
    ),
    (lm1b_detokenize, "I 'm done .", "I'm done."),
    (lambada_detokenize, "  \u201cHello\u201d she said.  ", '\n"Hello" she said.'),
]


@pytest.mark.parametrize(("fn", "given", "expected"), PAIRS)
def test_detokenisers_known_pairs(fn, given, expected):
    assert fn(given) == expected


def _official_detokenisers() -> dict:
    repo = Path("/work/.mirror/ML-GSAI+RADD/repo")
    if not repo.is_dir():
        pytest.skip("official RADD checkout not fetched")
    src = subprocess.run(
        ["git", "-C", str(repo), "show", "HEAD:data.py"], capture_output=True, text=True
    ).stdout
    ns: dict = {"re": re}
    for node in ast.parse(src).body:  # only the pure detokeniser functions (the module imports `datasets`)
        if isinstance(node, ast.FunctionDef) and node.name.endswith("detokenizer"):
            exec(compile(ast.Module([node], []), "official_data", "exec"), ns)
    return ns


def test_detokenisers_equal_the_official_ones():
    ns = _official_detokenisers()
    ours = {
        wikitext_detokenize: "wt",
        ptb_detokenize: "ptb",
        lm1b_detokenize: "lm1b",
        lambada_detokenize: "lambada",
    }
    for fn, given, _ in PAIRS:
        for text in (given, given * 2, given.upper()):
            assert fn(text) == ns[f"{ours[fn]}_detokenizer"](text)


def test_official_chunks_per_shard_and_batch():
    # 16 examples of 3 tokens, 8 shards of 2: each shard concatenates 6 tokens -> one window of 4, remainder dropped
    ex = [[i, i, i] for i in range(16)]
    w = official_chunks(ex, 4)
    assert w.tolist() == [[2 * s, 2 * s, 2 * s, 2 * s + 1] for s in range(8)]
    # batches of 1000 rows inside a shard are chunked separately too
    w = official_chunks([[1, 2, 3]] * 1002, 7, num_proc=1)
    assert w.shape == (428, 7)  # 3000 tokens -> 428 windows, the last 2 rows' 6 tokens none (one concat: 429)
    w = official_chunks([[1, 2, 3]] * 1005, 7, num_proc=1)
    assert w.shape == (430, 7)  # the 15 tokens of rows 1000..1004 give 2 more
    with pytest.raises(ValueError, match="fewer than 64 tokens"):
        official_chunks([[1, 2]], 64)


def _write_formats(tmp_path: Path, rows: list[str]) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = {"txt": tmp_path / "d.txt", "jsonl": tmp_path / "d.jsonl"}
    files["txt"].write_text("".join(r if r.endswith("\n") else r + "\n" for r in rows))
    files["jsonl"].write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    table = pa.table({"text": rows})
    files["parquet"] = tmp_path / "d.parquet"
    pq.write_table(table, files["parquet"])
    files["arrow"] = tmp_path / "data-00000-of-00001.arrow"
    with pa.OSFile(str(files["arrow"]), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)  # the datasets cache layout: an Arrow stream
    return files


def test_every_format_reads_the_same_rows(tmp_path):
    rows = [" = Title = \n", " Some text , here . \n", " \n"]
    files = _write_formats(tmp_path, rows)
    for fmt, path in files.items():
        assert read_examples(path, "wikitext103") == rows, fmt
    ptb_rows = ["a b c", "d e"]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"sentence": r}) + "\n" for r in ptb_rows))
    (tmp_path / "p.txt").write_text("a b c\nd e\n")
    assert read_examples(tmp_path / "p.jsonl", "ptb") == ptb_rows
    assert read_examples(tmp_path / "p.txt", "ptb") == ptb_rows


def test_bad_benchmark_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmark data not found"):
        read_examples(tmp_path / "none.txt", "ptb")
    (tmp_path / "bad.jsonl").write_text('{"title": "x"}\n')
    with pytest.raises(ValueError, match="no string field"):
        read_examples(tmp_path / "bad.jsonl", "lambada")


def test_benchmark_windows_tokenise_with_eos(tiny_gpt2_tokenizer, tmp_path):
    from radd.tokenizers import load_tokenizer

    tok = load_tokenizer(tiny_gpt2_tokenizer)
    rows = [" The quick brown fox , here . \n", " It 's a test @-@ game . \n"] * 20
    (tmp_path / "w.txt").write_text("".join(rows))
    w = benchmark_windows(tmp_path / "w.txt", "wikitext2", tok, 8)
    eos = tok.tok.eos_token_id
    per_row = [[*tok.encode(wikitext_detokenize(r)).tolist(), eos] for r in rows]
    # 40 rows -> 8 shards of 5 rows: each shard concatenated and chunked on its own
    shard_tokens = [[t for row in per_row[5 * s : 5 * s + 5] for t in row] for s in range(8)]
    expected = [st[i : i + 8] for st in shard_tokens for i in range(0, len(st) - 7, 8)]
    assert w.tolist() == expected
    assert int((w == eos).sum()) > 0
    assert set(BENCHMARKS) == {"lambada", "wikitext2", "wikitext103", "ptb", "lm1b", "openwebtext"}


@pytest.fixture(scope="module")
def gpt2_radd(tiny_gpt2_tokenizer, tmp_path_factory):
    import radd
    from radd.tokenizers import load_tokenizer

    tok = load_tokenizer(tiny_gpt2_tokenizer)
    torch.manual_seed(0)
    cfg = radd.RADDConfig(vocab_size=tok.vocab_size, max_length=16, hidden_size=16, num_layers=1, num_heads=2)
    d = tmp_path_factory.mktemp("gm") / "m"
    radd.RADD(cfg).save_pretrained(d)
    tok.save(d)
    return d


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "parquet", "arrow"])
def test_cli_eval_benchmark(gpt2_radd, tmp_path, capsys, fmt):
    rows = [" The quick brown fox jumps , over the lazy dog . \n"] * 40
    path = _write_formats(tmp_path, rows)[fmt]
    args = ["eval", "--model", str(gpt2_radd), "--benchmark", "wikitext103", "--data", str(path), "--length", "16",
            "--num-samples", "2", "--estimator", "lambda", "--json"]  # fmt: skip
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["benchmark"] == "wikitext103"
    assert r["num_sequences"] % 8 == 0 and r["num_sequences"] >= 8  # 8 shards of 5 identical rows
    # a zero-initialised head predicts uniformly: the bound is log V per masked token, so PPL ≈ V
    vocab = 300
    assert abs(r["nll_bound_nats_per_token"] - torch.log(torch.tensor(float(vocab))).item()) < 0.6


def test_cli_eval_benchmark_errors(gpt2_radd, tmp_path, capsys):
    assert main(["eval", "--model", str(gpt2_radd), "--benchmark", "ptb", "--json"]) == 2
    assert "--data" in capsys.readouterr().err
    assert (
        main(["eval", "--model", str(gpt2_radd), "--benchmark", "ptb", "--data", str(tmp_path / "x.txt")])
        == 2
    )
    assert "not found" in capsys.readouterr().err


def test_arrow_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import sys

    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"radd-diffusion\[data\]"):
        read_examples(tmp_path / "d.parquet", "lm1b")
