"""Zero-shot perplexity data as RADD/SEDD evaluate it (RADD §5, Table 2): the official detokenisers, GPT-2
tokenisation with an EOS after every example, and the official chunking into ``length``-token windows.

The official pipeline (SEDD's ``data.get_dataset``) detokenises each example, tokenises it with GPT-2, appends
the EOS id, then concatenates and cuts into blocks of ``length`` with ``datasets.map(batched=True, num_proc=8)``:
the dataset is split into 8 contiguous shards, each shard into batches of 1000 examples, and every batch is
concatenated and chunked on its own, dropping its remainder. `official_chunks` reproduces exactly that.
Which split: the official evaluation scores the ``test`` split, except WikiText-2, whose ``train`` split it
scores (``get_valid_dataloaders``); LAMBADA is OpenAI's ``lambada_test.jsonl``; OpenWebText has no official split
(pass your held-out documents). Files are read locally: plain text (one example per line), JSON lines (a
``text`` or ``sentence`` field), parquet, or a Hugging Face datasets cache ``.arrow`` file (pyarrow:
``pip install "radd-diffusion[data]"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "benchmark_windows",
    "lambada_detokenize",
    "lm1b_detokenize",
    "official_chunks",
    "ptb_detokenize",
    "read_examples",
    "wikitext_detokenize",
]


def _sub_all(text: str, rules: Iterable[tuple[str, str]]) -> str:
    for old, new in rules:
        text = text.replace(old, new)
    return text


def wikitext_detokenize(text: str) -> str:
    """WikiText's detokeniser (official ``wt_detokenizer``): @-@ number separators, spaced punctuation, brackets
    and quotes, heading markers, the degree sign, spaces around newlines, `` N `` and `` 's``."""
    text = text.replace("s '", "s'")
    text = re.sub(r"/' [0-9]/", r"/'[0-9]/", text)  # (a pattern that needs literal slashes: kept as it acts)
    text = _sub_all(text, ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")))
    text = _sub_all(text, ((f" {p} ", f"{p} ") for p in ":;.!?,"))
    for left, right in (("(", ")"), ("[", "]"), ("{", "}")):
        l, r = re.escape(left), re.escape(right)
        text = re.sub(rf"{l}\s*([^{r}]*?)\s*{r}", rf"{left}\1{right}", text)
    for q in ('"', "'"):
        text = re.sub(rf"{q}\s*([^{q}]*?)\s*{q}", rf"{q}\1{q}", text)
    text = _sub_all(text, (("= = = =", "===="), ("= = =", "==="), ("= =", "==")))
    return _sub_all(
        text, ((" \u00b0 ", "\u00b0"), (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s"))
    )


def ptb_detokenize(text: str) -> str:
    """Penn Treebank's detokeniser (official ``ptb_detokenizer``): clitics, ``\\/``, `` N `` → `` 1 `` (up to ten
    overlapping passes), currency and ``<unk>`` → ``?``."""
    text = _sub_all(text, ((" 's", "'s"), ("s ' ", "s' "), (" n't", "n't"), (" \n ", "\n"), ("\\/", "/")))
    for _ in range(10):
        text = text.replace(" N ", " 1 ")
    return _sub_all(text, (("$ 1", "$1"), ("# 1", "#1"), ("<unk>", "?")))


def lm1b_detokenize(text: str) -> str:
    """LM1B's detokeniser (official ``lm1b_detokenizer``): URLs, clitics, spaced punctuation, quotes, brackets,
    currency signs."""
    text = _sub_all(text, (("http : / / ", "http://"), ("https : / / ", "https://")))
    text = re.sub(r" '(\w+)", r"'\1", text)
    text = re.sub(r" (\w+) \. ", r" \1. ", text)
    text = re.sub(r" (\w+) \.$", r" \1.", text)
    for p in "?!":
        text = text.replace(f" {p} ", f"{p} ")
        text = re.sub(rf" \{p}$", p, text)
    text = _sub_all(text, ((" , ", ", "), (" : ", ": "), (" ; ", "; "), (" / ", "/")))
    text = re.sub(r'" ([^"]+) "', r'"\1"', text)
    text = re.sub(r"' ([^']+) '", r"'\1'", text)
    text = re.sub(r"\( ([^\(\)]+) \)", r"(\1)", text)
    text = re.sub(r"\[ ([^\[\]]+) \]", r"[\1]", text)
    return _sub_all(text, (("$ ", "$"), ("\u00a3 ", "\u00a3")))


def lambada_detokenize(text: str) -> str:
    """LAMBADA's (official ``lambada_detokenizer``): curly double quotes → straight, stripped, a leading newline."""
    return "\n" + text.replace("\u201c", '"').replace("\u201d", '"').strip()


@dataclass(frozen=True)
class Benchmark:
    name: str
    detokenize: Callable[[str], str] | None
    official_split: str
    keep_newline: bool  # plain-text lines keep their "\n" (WikiText rows end with one in the HF dataset)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("lambada", lambada_detokenize, "lambada_test.jsonl (OpenAI)", False),
        Benchmark("wikitext2", wikitext_detokenize, "train (as the official evaluation)", True),
        Benchmark("wikitext103", wikitext_detokenize, "test", True),
        Benchmark("ptb", ptb_detokenize, "test", False),
        Benchmark("lm1b", lm1b_detokenize, "test", False),
        Benchmark("openwebtext", None, "held-out documents (no official split)", False),
    )
}


def _records_text(records: Iterable[dict], path: Path) -> list[str]:
    out = []
    for i, rec in enumerate(records):
        for key in ("text", "sentence"):
            if isinstance(rec.get(key), str):
                out.append(rec[key])
                break
        else:
            raise ValueError(f"{path}: record {i} has no string field 'text' or 'sentence'")
    return out


def _arrow_table(path: Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            f'reading {path.suffix} files needs pyarrow: pip install "radd-diffusion[data]" (or pass a .txt/.jsonl file)'
        ) from exc
    if path.suffix == ".parquet":
        return pq.read_table(path)
    try:  # the datasets cache writes Arrow streams; plain Arrow IPC files also load
        with pa.memory_map(str(path)) as src:
            return pa.ipc.open_stream(src).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(str(path)) as src:
            return pa.ipc.open_file(src).read_all()


def read_examples(path: str | Path, benchmark: str | Benchmark) -> list[str]:
    """The examples (rows) of a local benchmark file: ``.txt`` (one per line), ``.jsonl``/``.json`` (``text`` or
    ``sentence`` field), ``.parquet`` or ``.arrow`` (a HF datasets cache file)."""
    bench = BENCHMARKS[benchmark] if isinstance(benchmark, str) else benchmark
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"benchmark data not found: {p} (a .txt, .jsonl, .parquet or datasets .arrow file)"
        )
    suffix = p.suffix.lower()
    if suffix in (".arrow", ".parquet"):
        table = _arrow_table(p)
        return _records_text(table.to_pylist(), p)
    text = p.read_text(encoding="utf-8")
    if suffix in (".jsonl", ".json"):
        try:
            if suffix == ".json" and text.lstrip().startswith("["):
                records = json.loads(text)
            else:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not valid JSON lines ({exc})") from exc
        return _records_text(records, p)
    lines = text.splitlines(keepends=True)
    return [ln if bench.keep_newline else ln.rstrip("\n") for ln in lines]


def official_chunks(
    examples: Sequence[Sequence[int]], length: int, *, num_proc: int = 8, batch_rows: int = 1000
) -> torch.Tensor:
    """(n, length) windows as the official ``group_texts`` map makes them: ``num_proc`` contiguous shards (sizes as
    ``datasets.Dataset.shard(contiguous=True)``), each in batches of ``batch_rows`` examples, each batch
    concatenated and cut into blocks of ``length`` with its remainder dropped."""
    n = len(examples)
    shards = max(1, min(num_proc, n))
    div, mod = divmod(n, shards)
    blocks: list[list[int]] = []
    for s in range(shards):
        start = s * div + min(s, mod)
        stop = start + div + (1 if s < mod else 0)
        for b in range(start, stop, batch_rows):
            flat = [t for ex in examples[b : min(b + batch_rows, stop)] for t in ex]
            blocks.extend(flat[i : i + length] for i in range(0, len(flat) - length + 1, length))
    if not blocks:
        raise ValueError(
            f"the benchmark has fewer than {length} tokens per chunking batch: no window to score"
        )
    return torch.tensor(blocks, dtype=torch.long)


def benchmark_windows(
    path: str | Path, benchmark: str, tokenizer: object, length: int, *, eos_id: int | None = None
) -> torch.Tensor:
    """Read, detokenise, tokenise (+EOS after each example) and chunk a benchmark file as the official code does."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[benchmark]
    if eos_id is None:
        hf = getattr(tokenizer, "tok", tokenizer)
        eos_id = getattr(hf, "eos_token_id", None)
        if eos_id is None:
            raise ValueError(
                "the tokenizer has no EOS token; the official evaluation appends GPT-2's <|endoftext|>"
            )
    examples = read_examples(path, bench)
    if bench.detokenize is not None:
        examples = [bench.detokenize(t) for t in examples]
    ids = [[*tokenizer.encode(t).tolist(), int(eos_id)] for t in examples]  # type: ignore[attr-defined]
    return official_chunks(ids, length)
