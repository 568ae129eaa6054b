"""Model profiles (README, "Profiles"): named sets of params shipped with the package.

`worldr1 profile use NAME` rewrites params.yaml from `NAME.yaml` here, keeping the user's `rounds`
(and their comments) and `launch` (it belongs to the machine, not the model), and pointing `evaluate.policy` at the last of them. Every other value comes
from the profile, explicitly: DVC tracks params key by key, so nothing may hide in a default.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from worldr1 import config, store
from worldr1.errors import UserError
from worldr1.rounds import to_plain


def available() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".yaml"))


def profile_text(name: str) -> str:
    if name not in available():
        raise UserError(f"unknown profile {name!r}", f"use one of {', '.join(available())}")
    return resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def round_trip() -> YAML:
    yaml = YAML()  # comments and key order survive
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


def use_profile(path: str | Path, name: str) -> None:
    """Rewrite params.yaml at `path` from profile `name`, keeping its rounds."""
    path = Path(path)
    yaml = round_trip()
    doc = yaml.load(profile_text(name))
    if path.exists():
        # Only the rounds and the launcher are kept, so a file from an older version (missing newer
        # keys) still switches.
        config.read_yaml(path)  # unreadable or not YAML: one line saying where
        current = yaml.load(path.read_text(encoding="utf-8"))
        if isinstance(current, CommentedMap) and isinstance(current.get("rounds"), CommentedMap):
            doc["rounds"] = current["rounds"]
        if isinstance(current, CommentedMap) and isinstance(current.get("launch"), str):
            doc["launch"] = current["launch"]
    rounds = doc.get("rounds") or {}
    if rounds:
        doc["evaluate"]["policy"] = list(rounds)[-1]
    config.validate(to_plain(doc), f"profile {name}")
    buf = io.StringIO()
    yaml.dump(doc, buf)
    store.write_text(str(path), buf.getvalue())
