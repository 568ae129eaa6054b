"""The prompts table: every source read, camera sentences parsed, duplicates dropped, counts kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from worldr1 import store
from worldr1.config import PromptsConfig
from worldr1.errors import UserError
from worldr1.ids import derive_seed, normalize_text, prompt_id
from worldr1.prompts.camera import parse_camera
from worldr1.prompts.generator import generate_prompts
from worldr1.prompts.sources import Skipped, SourceLine, read_prompt_file, resolve

GENERATOR_SOURCE = "generator"
TOY_SOURCE = "toy"
# The report lists this many skipped lines in full; the counts cover all of them.
REPORT_EXAMPLES = 50
HOLDOUT_RANK = {"train": 0, "dynamic": 1, "test": 2}


@dataclass
class PromptSet:
    table: pa.Table
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: int = 0

    def report(self) -> dict[str, object]:
        """Counts for `reports/prompts.json` (DVC metrics) and the stage's summary line."""
        splits = Counter(self.table.column("split").to_pylist())
        reasons = [r for r in self.table.column("camera_reason").to_pylist() if r is not None]
        return {
            "prompts": self.table.num_rows,
            "by_split": {k: splits.get(k, 0) for k in ("train", "dynamic", "test")},
            "camera_parsed": self.table.num_rows - len(reasons),
            "camera_unparsed": len(reasons),
            "camera_unparsed_by_reason": dict(Counter(r.split(" (")[0] for r in reasons).most_common()),
            "duplicates_removed": self.duplicates,
            "lines_skipped": len(self.skipped),
            "skipped": [s.as_dict() for s in self.skipped[:REPORT_EXAMPLES]],
        }


def read_enhanced(path: str, plain: str, max_chars: int) -> tuple[list[SourceLine], list[Skipped]]:
    """The enhance stage's prompts of the plain source `plain`, read like any source file."""
    if not store.exists(path):
        raise UserError(
            f"{path}, the enhanced prompts of {plain}, not found", "run the enhance stage first: dvc repro enhance"
        )
    fs, fs_path = store.filesystem(path)
    if not fs.isdir(fs_path) and not fs.cat_file(fs_path).strip():
        raise UserError(
            f"no line of {plain} passed the enhance stage's check ({path} is empty)",
            "see the reasons in reports/enhance.json, then change prompts.enhance.model or raise its attempts",
        )
    return read_prompt_file(path, max_chars, "prompts.enhance.sources")


def toy_prompt_seed(seed: int, split: str, index: int) -> int:
    """Scenes of toy prompts: seeds of their own, so no prompt is a pretraining clip's."""
    return derive_seed(seed, "toy-prompts", split, index) % 2**31


def build_prompt_set(
    cfg: PromptsConfig, seed: int, root: str = ".", toy_prompt: Callable[[int], str] | None = None
) -> PromptSet:
    """Every source of `cfg`; `toy_prompt(scene_seed)` writes the toy world's prompts when `cfg.toy`
    asks for some (the caller brings it: the prompt grammar knows no toy world)."""
    if (cfg.toy.train or cfg.toy.test) and toy_prompt is None:
        raise ValueError("prompts.toy asks for toy prompts: pass toy_prompt (worldr1.toyworld.corrupt.clip_prompt)")
    lines: list[tuple[SourceLine, str]] = []
    skipped: list[Skipped] = []
    for src in cfg.sources:
        got, bad = read_prompt_file(resolve(src.path, root), cfg.max_chars)
        # Record the path as written in params, so the table does not depend on where it ran.
        lines += [(SourceLine(s.text, src.path, s.line), src.split) for s in got]
        skipped += [Skipped(src.path, s.line, s.reason) for s in bad]
    for src in cfg.enhance.sources:
        path = str(Path(store.Paths().enhanced_text(src.path)))
        got, bad = read_enhanced(resolve(path, root), src.path, cfg.max_chars)
        lines += [(SourceLine(s.text, path, s.line), src.split) for s in got]
        skipped += [Skipped(path, s.line, s.reason) for s in bad]
    if cfg.generator.count:
        made = generate_prompts(cfg.generator.count, derive_seed(seed, "prompts", "generator"))
        lines += [(SourceLine(g.text, GENERATOR_SOURCE, g.index), cfg.generator.split) for g in made]

    for split in ("train", "test"):
        count = getattr(cfg.toy, split)
        if count:
            assert toy_prompt is not None
            lines += [
                (SourceLine(toy_prompt(toy_prompt_seed(seed, split, i)), TOY_SOURCE, i), split) for i in range(count)
            ]

    kept: dict[str, tuple[SourceLine, str]] = {}
    duplicates = 0
    for line, split in lines:
        pid = prompt_id(line.text)
        if pid in kept:
            duplicates += 1
            # A prompt in both a held-out and a training source stays held out, whatever the order.
            if HOLDOUT_RANK[split] > HOLDOUT_RANK[kept[pid][1]]:
                kept[pid] = (line, split)
            continue
        kept[pid] = (line, split)

    rows: dict[str, list[object]] = {
        k: [] for k in ("prompt_id", "split", "text", "camera", "camera_reason", "source", "source_line")
    }
    for pid, (line, split) in kept.items():
        text = normalize_text(line.text)
        parse = parse_camera(text)
        for key, value in (
            ("prompt_id", pid),
            ("split", split),
            ("text", text),
            ("camera", [p.value for p in parse.primitives]),
            ("camera_reason", parse.reason),
            ("source", line.source),
            ("source_line", line.line),
        ):
            rows[key].append(value)
    return PromptSet(pa.table(rows), skipped, duplicates)
