"""Prompt sources: one-prompt-a-line text files, read line by line without trusting them.

A bad line (not UTF-8, too long) is skipped and reported with its file and line number; a bad
file (missing, empty, binary) stops the stage with one clear error before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worldr1 import store
from worldr1.errors import UserError
from worldr1.ids import normalize_text


@dataclass(frozen=True)
class SourceLine:
    text: str
    source: str
    line: int


@dataclass(frozen=True)
class Skipped:
    source: str
    line: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "reason": self.reason}


def read_prompt_file(path: str, max_chars: int, key: str = "prompts.sources") -> tuple[list[SourceLine], list[Skipped]]:
    """Prompts of a text file (blank lines ignored) and the lines that had to be skipped; `key` is
    the params list that names the file, for the errors' fixes."""
    fs, fs_path = store.filesystem(path)
    if not fs.exists(fs_path):
        raise UserError(f"prompt file {path} not found", f"fix {key} in params.yaml or create the file")
    if fs.isdir(fs_path):
        raise UserError(f"prompt file {path} is a directory", f"list the text files inside it under {key}")
    try:
        data = fs.cat_file(fs_path)
    except OSError as exc:
        raise UserError(f"prompt file {path} cannot be read ({exc.strerror or exc})", "check its permissions") from None
    # Text never holds NUL bytes; anything that does is an image, an archive, a model file...
    if b"\x00" in data[: 1 << 20]:
        raise UserError(
            f"prompt file {path} is binary, not text", f"point {key} at a UTF-8 file with one prompt per line"
        )
    prompts: list[SourceLine] = []
    skipped: list[Skipped] = []
    raw_lines = data.split(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            skipped.append(Skipped(path, number, f"not UTF-8 (byte {exc.start + 1})"))
            continue
        text = normalize_text(line)
        if not text:
            continue
        if len(text) > max_chars:
            skipped.append(Skipped(path, number, f"{len(text)} characters, over prompts.max_chars={max_chars}"))
            continue
        prompts.append(SourceLine(text, path, number))
    if not prompts:
        why = (
            f"has no usable prompt ({len(skipped)} lines skipped, e.g. line {skipped[0].line}: {skipped[0].reason})"
            if skipped
            else "is empty"
        )
        raise UserError(f"prompt file {path} {why}", f"put one prompt per line in it, or remove it from {key}")
    return prompts, skipped


def resolve(path: str, root: str) -> str:
    """Source paths in params are relative to the project root unless absolute or a URL."""
    if "://" in path or Path(path).is_absolute():
        return path
    return str(Path(root) / path) if root not in {"", "."} else path
