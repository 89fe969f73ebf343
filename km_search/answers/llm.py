"""Optional generative answers from an OpenAI-compatible chat endpoint (KM_LLM_URL).

The model sees the top passages numbered [1]..[n] and must cite one for every sentence it writes.
`cited_answer` keeps only the sentences that cite a passage it was given, so an answer never
carries a claim without a source. Any failure (timeout, refused connection, HTTP error, a reply
that is not the API's shape) raises LLMError; the service then falls back to the extractive answer.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
import re
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from km_search.errors import LLMError
from km_search.types import Hit

SYSTEM_PROMPT = (
    "You answer questions about an organization's documents using only the numbered passages you are given. "
    "Write a short, direct answer. End every sentence with the number of the passage that supports it in "
    "square brackets, like [1] or [2][3]. Never state anything the passages do not support. If the passages "
    "do not answer the question, reply exactly: I don't know."
)

_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+(?:[\"')\]]*(?:\s*\[\d+(?:\s*,\s*\d+)*\])+)?(?=\s|$)|$)", re.S)



@dataclass(frozen=True)
class CitedAnswer:
    text: str  # the kept sentences, citations included
    sentences: tuple[tuple[str, tuple[int, ...]], ...]  # each kept sentence and the passage numbers it cites
    dropped: tuple[str, ...]  # sentences without a valid citation


def endpoint(url: str) -> str:
    """KM_LLM_URL may be the server root, its /v1, or the full /v1/chat/completions address."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def build_messages(question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    passages = "\n\n".join(
        f"[{n}] {hit.title}" + (f" — {' › '.join(hit.heading_path)}" if hit.heading_path else "") + f"\n{hit.text}"
        for n, hit in enumerate(hits, start=1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"},
    ]


def cited_answer(text: str, passages: int) -> CitedAnswer:
    """Split a generated answer into sentences; keep those citing a passage 1..`passages`."""
    kept: list[tuple[str, tuple[int, ...]]] = []
    dropped: list[str] = []
    for m in _SENTENCE.finditer(text.strip()):
        sentence = m.group().strip()
        if not sentence:
            continue
        refs = tuple(
            dict.fromkeys(int(n) for group in _CITE.findall(sentence) for n in group.split(",") if n.strip())
        )
        valid = tuple(n for n in refs if 1 <= n <= passages)
        if valid:
            # a marker citing no passage we sent ("[7]") is noise in a sentence that cites a real one
            sentence = _CITE.sub(lambda c: c.group() if _valid(c.group(1), passages) else "", sentence)
            kept.append((re.sub(r"\s+([.!?])", r"\1", " ".join(sentence.split())), valid))
        elif _CITE.sub("", sentence).strip(" .\t\n"):  # a bare "[7]." is no claim
            dropped.append(sentence)
    return CitedAnswer(" ".join(s for s, _ in kept), tuple(kept), tuple(dropped))


def _valid(group: str, passages: int) -> bool:
    return any(n.strip() and 1 <= int(n) <= passages for n in group.split(","))


class ChatClient:
    """A minimal client for POST /v1/chat/completions, plain or streamed (server-sent events)."""

    def __init__(self, url: str, model: str, timeout_s: float, api_key: str | None = None, max_tokens: int = 512):
        self.url = endpoint(url)
        self.model = model
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.max_tokens = max_tokens

    def _request(self, messages: list[dict[str, str]], stream: bool) -> dict:
        return {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens,
                "stream": stream}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @contextmanager
    def _failures_as_llm_errors(self, reply_kind: str) -> Iterator[None]:
        """Every way the endpoint can fail becomes one LLMError that says which, for the fallback note."""
        import httpx

        try:
            yield
        except httpx.TimeoutException as exc:
            raise LLMError(f"the language model at {self.url} did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise LLMError(f"the language model at {self.url} answered HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"the language model at {self.url} could not be reached: {exc}") from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"the language model at {self.url} sent a reply that is not {reply_kind}") from exc

    def complete(self, messages: list[dict[str, str]]) -> str:
        import httpx

        with self._failures_as_llm_errors("a chat completion"):
            response = httpx.post(self.url, json=self._request(messages, False), headers=self._headers(),
                                  timeout=self.timeout_s)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"] or "")

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Text deltas as the model writes them; the whole reply must arrive within the timeout."""
        import httpx

        deadline = time.monotonic() + self.timeout_s
        with self._failures_as_llm_errors("chat completion chunks"):
            with httpx.stream("POST", self.url, json=self._request(messages, True), headers=self._headers(),
                              timeout=self.timeout_s) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline passed")
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
