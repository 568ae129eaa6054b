"""The enhance stage's answers per line, kept across runs: a new line in a source costs one call,
not a rerun of every line. An entry is keyed by everything that decides its answer (`line_key`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pyarrow as pa

from worldr1 import store
from worldr1.errors import UserError
from worldr1.prompts.camera import Primitive


def line_key(plain: str, moves: tuple[Primitive, ...], model: str, instructions: str) -> str:
    blob = json.dumps([plain, [m.value for m in moves], model, instructions], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    key: str
    input: str
    camera: tuple[str, ...]
    model: str
    output: str | None
    attempts: int
    status: str  # ok | failed
    reason: str | None


class LineCache:
    def __init__(self, entries: dict[str, Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = dict(entries or {})
        self.added = 0

    @classmethod
    def read(cls, url: str) -> LineCache:
        """The cache at `url`, or an empty one when there is none yet."""
        if not store.exists(url):
            return cls()
        try:
            rows = store.read_table(url, store.ENHANCE_CACHE).to_pylist()
        except UserError as error:  # DVC keeps a persisted output: rerunning the stage keeps it too
            raise UserError(error.cause, f"remove {url} (its lines are asked for again)") from None
        return cls({r["key"]: Entry(**{**r, "camera": tuple(r["camera"])}) for r in rows})

    def usable(self, key: str, attempts: int) -> Entry | None:
        """A kept answer, or a failure that had at least `attempts` tries (raising
        prompts.enhance.attempts tries the failed lines again)."""
        entry = self.entries.get(key)
        if entry is None or (entry.status != "ok" and entry.attempts < attempts):
            return None
        return entry

    def put(self, entry: Entry) -> None:
        self.entries[entry.key] = entry
        self.added += 1

    def table(self) -> pa.Table:
        rows = [{**e.__dict__, "camera": list(e.camera)} for e in sorted(self.entries.values(), key=lambda e: e.key)]
        return pa.Table.from_pylist(rows, schema=store.ENHANCE_CACHE.schema)
