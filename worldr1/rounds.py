"""Round items of params.yaml: their phases (World-R1's dynamic fine-tuning) and `rounds add`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from worldr1 import config, store
from worldr1.config import Params, Phase
from worldr1.errors import UserError


def phase_of(index: int, params: Params) -> Phase:
    """Phase of the round at `index` (0-based): `main_steps` of 3D rewards, then `dynamic_steps`
    of image quality on dynamic prompts, repeated, both expressed in whole rounds."""
    per_round = params.steps_per_round
    main = -(-params.schedule.main_steps // per_round)
    dynamic = -(-params.schedule.dynamic_steps // per_round)
    return "3d" if index % (main + dynamic) < main else "dynamic"


def new_rounds(params: Params, count: int) -> list[tuple[str, str, Phase]]:
    """(name, prev, phase) of the next `count` rounds after those already in params."""
    names = list(params.rounds)
    first = int(names[-1][1:]) + 1 if names else 0  # after the last round, even if numbers were skipped
    out: list[tuple[str, str, Phase]] = []
    prev = names[-1] if names else "base"
    for index in range(first, first + count):
        if index > 999:
            raise UserError(
                f"round r{index} would need four digits", "rounds go up to r999; start a new project for more"
            )
        name = f"r{index:03d}"
        out.append((name, prev, phase_of(index, params)))
        prev = name
    return out


def add_rounds(path: str | Path, count: int) -> list[tuple[str, str, Phase]]:
    """Append `count` round items to params.yaml, keeping its comments, order and layout."""
    if count < 1:
        raise UserError(f"cannot add {count} rounds", "pass a positive number: worldr1 rounds add 4")
    path = Path(path)
    params = config.load(path)
    yaml = YAML()  # round-trip: comments and key order survive
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # the shipped file's layout
    yaml.preserve_quotes = True
    doc = yaml.load(path.read_text(encoding="utf-8"))
    rounds = doc.get("rounds")
    if not isinstance(rounds, CommentedMap):
        rounds = doc["rounds"] = CommentedMap()
    rounds.fa.set_block_style()
    added = new_rounds(params, count)
    for name, prev, phase in added:
        item = CommentedMap(prev=prev, phase=phase)
        item.fa.set_flow_style()
        rounds[name] = item
    if added and isinstance(doc.get("evaluate"), CommentedMap):
        doc["evaluate"]["policy"] = added[-1][0]  # evaluate the newest policy
    config.validate(to_plain(doc), str(path))
    buf = io.StringIO()
    yaml.dump(doc, buf)
    store.write_text(str(path), buf.getvalue())
    return added


def to_plain(data: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists (what the safe loader returns)."""
    return json.loads(json.dumps(data))
