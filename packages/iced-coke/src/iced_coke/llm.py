"""Language models for mining concept pairs: one small protocol, three implementations.

* `ScriptedLLM` — fixed answers (tests, dry runs);
* `TransformersLLM` — a local chat model through transformers (``apply_chat_template`` + greedy ``generate``);
* `OpenAICompatibleLLM` — any ``/chat/completions`` endpoint, on the standard library alone. URL, key and model
  come from arguments or ``ICED_COKE_LLM_URL`` / ``ICED_COKE_LLM_KEY`` / ``ICED_COKE_LLM_MODEL``. Nothing is sent
  unless a URL is configured; the key is never logged, printed, put in an error message or written anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "LLM",
    "LLMError",
    "LLMNotConfiguredError",
    "OpenAICompatibleLLM",
    "ScriptedLLM",
    "TransformersLLM",
]

log = logging.getLogger(__name__)

Message = dict[str, str]


class LLMError(RuntimeError, ValueError):
    """An LLM call failed (endpoint refused, timed out or answered with an error) after the retries. A ValueError
    too, so the CLI reports it in one line with exit code 2."""


class LLMNotConfiguredError(LLMError):
    """No endpoint configured: nothing was sent."""


@runtime_checkable
class LLM(Protocol):
    """``complete(messages) -> answer text``; ``messages`` are chat turns ``{"role", "content"}``."""

    name: str

    def complete(self, messages: Sequence[Message]) -> str: ...


class ScriptedLLM:
    """Answers from a list (in order) or a function of the messages; records every prompt it was given."""

    def __init__(
        self, answers: Sequence[str] | Callable[[Sequence[Message]], str], name: str = "scripted"
    ) -> None:
        self._answers = answers
        self._i = 0
        self.name = name
        self.prompts: list[list[Message]] = []

    def complete(self, messages: Sequence[Message]) -> str:
        self.prompts.append([dict(m) for m in messages])
        if callable(self._answers):
            return self._answers(messages)
        if self._i >= len(self._answers):
            raise LLMError(f"scripted LLM ran out of answers after {self._i}")
        self._i += 1
        return self._answers[self._i - 1]


class TransformersLLM:
    """A local causal LM with a chat template (``from_pretrained(path)`` or a model + tokenizer you built)."""

    def __init__(
        self, model: Any, tokenizer: Any, max_new_tokens: int = 512, name: str | None = None
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", **kw: Any) -> TransformersLLM:
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForCausalLM.from_pretrained(path).to(device)
        return cls(model, tok, **kw)

    def complete(self, messages: Sequence[Message]) -> str:
        import torch

        if getattr(self.tokenizer, "chat_template", None) is None:
            raise LLMError("this tokenizer has no chat template; use a chat/instruct model")
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        input_ids = ids["input_ids"].to(self.model.device)
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        with torch.no_grad():
            out = self.model.generate(
                input_ids,
                attention_mask=ids.get("attention_mask", torch.ones_like(input_ids)).to(self.model.device),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return self.tokenizer.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)


class OpenAICompatibleLLM:
    """``POST {url}/chat/completions`` with ``{"model", "messages", "temperature"}``; the answer is
    ``choices[0].message.content``. Retries refused/timed-out/5xx/429 calls ``retries`` times with backoff."""

    ENV_URL, ENV_KEY, ENV_MODEL = "ICED_COKE_LLM_URL", "ICED_COKE_LLM_KEY", "ICED_COKE_LLM_MODEL"

    def __init__(
        self,
        url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        temperature: float = 0.7,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.url = (url or os.environ.get(self.ENV_URL) or "").rstrip("/") or None
        self.model = model or os.environ.get(self.ENV_MODEL) or "gpt-3.5-turbo"
        self.__key = api_key if api_key is not None else os.environ.get(self.ENV_KEY)
        self.temperature, self.timeout = temperature, timeout
        self.retries, self.backoff = max(0, int(retries)), backoff
        self.name = f"openai-compatible:{self.model}"

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleLLM(url={self.url!r}, model={self.model!r}, key={'set' if self.__key else 'unset'})"

    @property
    def configured(self) -> bool:
        return self.url is not None

    def _redact(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def complete(self, messages: Sequence[Message]) -> str:
        if self.url is None:
            raise LLMNotConfiguredError(
                f"no LLM endpoint configured: set {self.ENV_URL} (and {self.ENV_KEY} if it needs a key); nothing was sent"
            )
        endpoint = self.url if self.url.endswith("/chat/completions") else self.url + "/chat/completions"
        body = json.dumps(
            {"model": self.model, "messages": list(messages), "temperature": self.temperature}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.__key:
            headers["Authorization"] = f"Bearer {self.__key}"
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            req = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return str(data["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if exc.code < 500 and exc.code != 429:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = "timed out" if isinstance(reason, (TimeoutError, socket.timeout)) else f"{reason}"
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                last = f"unexpected response ({type(exc).__name__})"
                break
            log.warning("LLM endpoint %s: attempt %d failed: %s", endpoint, attempt + 1, self._redact(last))
        raise LLMError(self._redact(f"LLM endpoint {endpoint} failed after {attempt + 1} attempt(s): {last}"))
