"""An OpenAI-compatible chat endpoint as the enhancer's chat model (vLLM, llama.cpp's server,
Ollama, a hosted API): `POST {url}/chat/completions`, with a timeout per request, bounded retries
with exponential backoff, and at most `concurrency` requests in flight.

The API key is read from the environment variable that params name, never from params, and no
message this module writes contains it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from worldr1.enhance.chat import Reply
from worldr1.enhance.instructions import Message
from worldr1.errors import UserError

# Waiting longer than this on a server's Retry-After stalls a whole stage: back off at most this.
MAX_WAIT_S = 60.0
# A server that does not accept the connection in this long is not there.
CONNECT_TIMEOUT_S = 10.0
TRANSIENT = {408, 409, 425, 429, 500, 502, 503, 504}
# What the whole run cannot get past: another line would be refused the same way.
FATAL = {401, 403, 404}


class Unreachable(Exception):
    """No connection to the server after every retry."""


class ServedChat:
    def __init__(
        self,
        url: str,
        model: str,
        api_key_env: str,
        *,
        temperature: float,
        max_tokens: int,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        concurrency: int,
    ) -> None:
        if not re.match(r"^https?://[^\s/]+", url):
            raise UserError(
                f"chat endpoint URL {url!r} is not an http(s) URL",
                "give the API's base URL, e.g. http://127.0.0.1:8000/v1 (prompts.enhance.url or --url)",
            )
        self.url = url.rstrip("/")
        self.model = model
        self.key_env = api_key_env
        self._key = ""
        if api_key_env:
            key = os.environ.get(api_key_env, "").strip()
            if not key:
                raise UserError(
                    f"the environment variable {api_key_env} (prompts.enhance.api_key_env) is not set",
                    f"export {api_key_env}=<your key>, or set prompts.enhance.api_key_env to '' for a server without a key",
                )
            if not key.isprintable() or any(c.isspace() for c in key):
                raise UserError(
                    f"the key in {api_key_env} holds spaces or control characters",
                    f"set {api_key_env} to the key alone",
                )
            self._key = key
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout_s, self.retries, self.backoff_s, self.concurrency = timeout_s, retries, backoff_s, concurrency
        # The model and its sampling, not where it is served: moving the server keeps the cache.
        self.identity = f"openai:{model}:t={temperature},max_tokens={max_tokens}"
        # A few waves of requests per call: what a failure halfway can lose before it is cached.
        self.chunk = 4 * concurrency
        self._session = requests.Session()
        pool = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, pool_block=True)
        self._session.mount("http://", pool)
        self._session.mount("https://", pool)
        self._stop = threading.Event()

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def complete(self, conversations: Sequence[list[Message]], seeds: Sequence[int]) -> list[Reply]:
        """Answers at most `concurrency` at a time; the first error that ends the run stops the others."""
        self._stop.clear()
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [pool.submit(self.ask, m, s) for m, s in zip(conversations, seeds)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                self._stop.set()
                error = failed.exception()
                if isinstance(error, Unreachable):
                    raise UserError(
                        f"cannot reach the chat endpoint {self.url} ({error})",
                        "start the server, or fix prompts.enhance.url (the API's base URL, e.g. http://127.0.0.1:8000/v1)",
                    ) from None
                assert error is not None
                raise error
            return [f.result() for f in futures]
        except BaseException:
            self._stop.set()  # Ctrl-C too: the queued requests are dropped, the running ones end
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def ask(self, messages: list[Message], seed: int) -> Reply:
        """One conversation's answer: retried on no connection, a timeout, HTTP 429 and 5xx."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": seed % 2**31,  # OpenAI and vLLM take it; servers without it ignore it
        }
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        problem, connected = "", False
        for attempt in range(self.retries + 1):
            if self._stop.is_set():
                return Reply(None, "stopped: another request ended the run")
            wait_s = self.backoff_s * 2**attempt
            try:
                response = self._session.post(
                    f"{self.url}/chat/completions",
                    json=payload,
                    headers=headers,
                    timeout=(min(CONNECT_TIMEOUT_S, self.timeout_s), self.timeout_s),
                )
            except requests.ConnectTimeout:  # before Timeout: it is both, and means nobody answered
                problem = f"no connection within {min(CONNECT_TIMEOUT_S, self.timeout_s):g} s"
            except requests.Timeout:
                problem, connected = f"no answer within {self.timeout_s:g} s", True
            except requests.ConnectionError as exc:
                problem = f"connection failed: {type(exc).__name__}"
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
                problem, connected = f"the answer broke off: {type(exc).__name__}", True
            except requests.RequestException as exc:  # an invalid URL or header: no retry helps
                raise UserError(
                    f"cannot send a request to {self.url} ({type(exc).__name__})", "check prompts.enhance.url"
                ) from None
            else:
                connected = True
                if response.status_code == 200:
                    return self._answer(response)
                problem = f"HTTP {response.status_code}: {self._redact(_server_message(response))}"
                if response.status_code in FATAL:
                    raise self._refused(response.status_code, problem)
                if response.status_code not in TRANSIENT:
                    return Reply(None, problem)  # this request's problem (too long, say), not the run's
                after = response.headers.get("Retry-After", "")
                if after.replace(".", "", 1).isdigit():
                    wait_s = float(after)
            if attempt < self.retries:
                self._stop.wait(min(wait_s, MAX_WAIT_S))
        if not connected:
            raise Unreachable(problem)
        return Reply(None, f"{problem} (after {self.retries + 1} tries)")

    def _answer(self, response: requests.Response) -> Reply:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Reply(None, "the server's answer is not a chat completion (no choices[0].message.content)")
        if not isinstance(content, str):
            return Reply(None, "the server's answer has no text content")
        return Reply(content)

    def _refused(self, status: int, problem: str) -> UserError:
        where = f"{self.url}/chat/completions"
        if status in (401, 403):
            key = f"the key in {self.key_env}" if self.key_env else "a request without a key"
            return UserError(f"{where} refused {key} ({problem})", "check the key, or set prompts.enhance.api_key_env")
        return UserError(
            f"{where} answered {problem}",
            f"check prompts.enhance.url (the API's base URL, ending in /v1 for most servers) and that it serves model {self.model!r}",
        )


def _server_message(response: requests.Response) -> str:
    """The error a server gave, short: OpenAI-style `{"error": {"message": ...}}` or the body."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message if message else body)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "") if text else response.reason or "no message"
