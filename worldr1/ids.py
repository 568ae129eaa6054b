"""Derived identifiers and seeds: nothing in the pipeline is random without a name."""

from __future__ import annotations

import hashlib
import unicodedata


def normalize_text(text: str) -> str:
    """The form two prompts are compared in: NFC, whitespace runs collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def prompt_id(text: str) -> str:
    """Stable id of a prompt: the same text (up to whitespace and Unicode form) gives the same id."""
    return "p" + hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:15]


def sample_id(round_name: str, pid: str, index: int) -> str:
    return f"{round_name}-{pid}-{index:03d}"


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from the global seed and any labels (round, prompt_id, index, purpose)."""
    key = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") >> 1
