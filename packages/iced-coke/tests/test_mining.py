"""Mining: the LLM clients (scripted, transformers-local, OpenAI-compatible against a 127.0.0.1 server) and the
phases pipeline with its resumable JSONL log."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from iced_coke.llm import LLMError, LLMNotConfiguredError, OpenAICompatibleLLM, ScriptedLLM, TransformersLLM
from iced_coke.mining import Judgement, MiningLog, mine_pairs, parse_json_list
from iced_coke.pairs import ConceptPair

SECRET = "sk-test-SECRET-0123456789"
SEEDS = [
    ConceptPair("A tea cup of iced coke.", "tea cup", "a ceramic cup", "iced coke", "dark fizzy drink", {"pattern": "container"}),
]  # fmt: skip


def pair_json(i: int, tag: str = "x") -> dict:
    return {"prompt": f"a {tag} {i} of y", "first_prompt": f"{tag} {i}", "first_describe": "d1",
            "second_prompt": "y", "second_describe": "d2"}  # fmt: skip


class Server:
    """A local OpenAI-compatible endpoint that records what it receives."""

    def __init__(self, status: int = 200, answer: str = "[]", sleep: float = 0.0):
        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                       "body": json.loads(body)})  # fmt: skip
                if sleep:
                    import time

                    time.sleep(sleep)
                payload = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server(answer=json.dumps([pair_json(1)]))
    yield s
    s.close()


class LevelJudge:
    def __init__(self, level=5):
        self.level, self.calls = level, []

    def judge(self, pair):
        self.calls.append(pair.prompt)
        return Judgement(self.level, (0.5, 0.7), "test")


def test_parse_json_list_variants():
    assert parse_json_list('Sure!\n```json\n[{"a": 1}]\n```\nbye') == [{"a": 1}]
    assert parse_json_list("here: [1, 2] ok") == [1, 2]
    with pytest.raises(ValueError):
        parse_json_list("no list here")


def test_nothing_is_sent_unless_configured(server, monkeypatch, tmp_path):
    for var in ("ICED_COKE_LLM_URL", "ICED_COKE_LLM_KEY", "ICED_COKE_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    llm = OpenAICompatibleLLM()
    assert not llm.configured
    with pytest.raises(LLMNotConfiguredError, match="nothing was sent"):
        mine_pairs(llm, SEEDS, LevelJudge(), tmp_path / "log.jsonl")
    assert server.requests == []


def test_configured_endpoint_gets_the_chat_and_the_key_stays_secret(server, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("ICED_COKE_LLM_URL", server.url)
    monkeypatch.setenv("ICED_COKE_LLM_KEY", SECRET)
    monkeypatch.setenv("ICED_COKE_LLM_MODEL", "my-model")
    llm = OpenAICompatibleLLM()
    caplog.set_level(logging.DEBUG)
    res = mine_pairs(llm, SEEDS, LevelJudge(), tmp_path / "log.jsonl", phases=(2,))
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "my-model" and req["body"]["messages"][1]["role"] == "user"
    assert [p.prompt for p in res.kept] == ["a x 1 of y"]
    log_text = (tmp_path / "log.jsonl").read_text()
    assert SECRET not in log_text and SECRET not in caplog.text and SECRET not in repr(llm)


def test_endpoint_errors_retry_then_one_line_error(monkeypatch, tmp_path, caplog):
    s = Server(status=503)
    try:
        llm = OpenAICompatibleLLM(s.url, api_key=SECRET, retries=2, backoff=0.0)
        with pytest.raises(LLMError) as e:
            llm.complete([{"role": "user", "content": "hi"}])
        assert len(s.requests) == 3 and "\n" not in str(e.value) and "503" in str(e.value)
        assert SECRET not in str(e.value) and SECRET not in caplog.text
    finally:
        s.close()
    s = Server(status=401)
    try:
        with pytest.raises(LLMError, match="401"):
            OpenAICompatibleLLM(s.url, retries=3, backoff=0.0).complete([{"role": "user", "content": "hi"}])
        assert len(s.requests) == 1  # client errors are not retried
    finally:
        s.close()
    s = Server(sleep=0.5)
    try:
        with pytest.raises(LLMError, match="timed out"):
            OpenAICompatibleLLM(s.url, timeout=0.1, retries=1, backoff=0.0).complete(
                [{"role": "user", "content": "x"}]
            )
    finally:
        s.close()
    # a refused connection: nothing listens on the closed server's port any more
    with pytest.raises(LLMError, match="failed after 2"):
        OpenAICompatibleLLM(s.url, retries=1, backoff=0.0, timeout=1).complete(
            [{"role": "user", "content": "x"}]
        )


def scripted_answers(messages):
    user = messages[-1]["content"]
    if "new, different" in user:
        return json.dumps([{"name": "tools", "description": "a tool made of food"}])
    if "Blend" in user:
        return "I cannot do that"  # unparseable: recorded, not fatal
    tag = "t" if "'tools'" in user else "c"
    return "```json\n" + json.dumps([pair_json(1, tag), pair_json(2, tag), {"prompt": "broken"}]) + "\n```"


def test_phases_pipeline_logs_everything_and_resumes_without_repeating(tmp_path):
    log = tmp_path / "mine.jsonl"
    llm, judge = ScriptedLLM(scripted_answers), LevelJudge()
    res = mine_pairs(llm, SEEDS, judge, log)
    # phase 2 (container), phase 3 (new pattern + its phase 2), phase 4 (blend: unparseable)
    assert len(llm.prompts) == 4 and res.llm_calls == 4
    assert (
        res.proposed == 4 and len(res.kept) == 4 and res.unparseable == 3
    )  # 2 broken pairs + 1 blend answer
    assert {p.extra["phase"] for p in res.kept} == {2, 3}
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(r["kind"] == "judgement" for r in recs) == 4
    assert any(r.get("error", "").startswith("unparseable") for r in recs)
    # resume: no prompt repeated, no pair re-judged, same result
    llm2, judge2 = ScriptedLLM([]), LevelJudge()
    res2 = mine_pairs(llm2, SEEDS, judge2, log)
    assert llm2.prompts == [] and judge2.calls == [] and res2.llm_calls == 0
    assert [p.prompt for p in res2.kept] == [p.prompt for p in res.kept]


def test_interrupted_run_keeps_what_finished_and_resumes(tmp_path):
    log = tmp_path / "mine.jsonl"
    answers = [json.dumps([pair_json(1)])]
    with pytest.raises(
        LLMError
    ):  # the scripted LLM runs out at the phase-3 prompt, like an endpoint going down
        mine_pairs(ScriptedLLM(answers), SEEDS, LevelJudge(), log)
    assert len(MiningLog(log).records) == 2  # the phase-2 answer and its judgement
    llm = ScriptedLLM(scripted_answers)
    res = mine_pairs(llm, SEEDS, LevelJudge(), log)
    assert (
        len(llm.prompts) == 3
    )  # phase 3 (new patterns, then pairs of the new one) and phase 4; no phase-2 repeat
    assert all("pattern 'container'" not in p[-1]["content"] for p in llm.prompts)
    assert "a x 1 of y" in [p.prompt for p in res.kept]


def test_min_level_filters(tmp_path):
    res = mine_pairs(
        ScriptedLLM(scripted_answers), SEEDS, LevelJudge(level=3), tmp_path / "l.jsonl", phases=(2,)
    )
    assert res.kept == [] and res.proposed == 2


def test_transformers_llm_local_chat_model(tmp_path):
    """A tiny random chat model answers gibberish: the pipeline records it as unparseable and goes on."""
    from gen_common.testing.lm_tiny import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    llm = TransformersLLM(model, tok, max_new_tokens=4, name="tiny")
    a = llm.complete([{"role": "user", "content": "hello"}])
    # at most 4 new tokens of gibberish (this seed: newlines), never the prompt echoed back
    assert (
        isinstance(a, str) and 1 <= len(tok(a, add_special_tokens=False).input_ids) <= 4 and "hello" not in a
    )
    res = mine_pairs(llm, SEEDS, LevelJudge(), tmp_path / "t.jsonl", phases=(2,))
    assert res.unparseable == 1 and res.kept == [] and res.llm_calls == 1
    rec = next(iter(MiningLog(tmp_path / "t.jsonl").records.values()))
    assert rec["llm"] == "tiny" and rec["parsed"] is None and rec["error"].startswith("unparseable")
