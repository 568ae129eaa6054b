"""The chat models the enhancer talks to: a conversation in, an answer (or why none came) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from worldr1.enhance.instructions import Message

if TYPE_CHECKING:
    from worldr1.config import EnhanceConfig


@dataclass(frozen=True)
class Reply:
    """An answer, or `error` when the backend got none (a timeout, HTTP 5xx after its retries)."""

    text: str | None
    error: str | None = None


class ChatModel(Protocol):
    #: names the model and its sampling settings: part of every cache key
    identity: str
    #: conversations per `complete` call: their answers are cached when it returns, so a failure
    #: halfway loses at most one call's worth
    chunk: int

    def complete(self, conversations: Sequence[list[Message]], seeds: Sequence[int]) -> list[Reply]:
        """One reply per conversation, sampled with its seed where the backend can."""
        ...


def open_chat(cfg: EnhanceConfig) -> ChatModel:
    """The backend that `prompts.enhance` names (each imports its libraries only when chosen)."""
    if cfg.backend == "local":
        from worldr1.enhance.local import LocalChat

        return LocalChat(cfg.model, cfg.temperature, cfg.max_new_tokens, cfg.batch)
    from worldr1.enhance.served import ServedChat

    return ServedChat(
        cfg.url,
        cfg.model,
        cfg.api_key_env,
        temperature=cfg.temperature,
        max_tokens=cfg.max_new_tokens,
        timeout_s=cfg.timeout_s,
        retries=cfg.retries,
        backoff_s=cfg.backoff_s,
        concurrency=cfg.concurrency,
    )
