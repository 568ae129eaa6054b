"""Model profiles (README, "Profiles"): named sets of params shipped with the package.

`toy.yaml` is the base: every param, commented. Each other profile is an overlay: a header comment
describing it, `extends: PROFILE` (the base or another overlay), and only the params that differ.
`load` merges a profile's chain onto the base in turn: mappings key by key (keeping the base's
comments above the key unless the overlay gives its own), a list or scalar replaced together with its
comments (the base's explained the base's value). The overlay's header replaces the base header's
`Profile: ...` description. A key the base lacks is an error, so a typo cannot add a param.

`worldr1 profile use NAME` rewrites params.yaml from the merged profile, keeping the user's `rounds`
(and their comments) and `launch` (it belongs to the machine, not the model), and pointing
`evaluate.policy` at the last of them. Every other value comes from the profile, explicitly: DVC
tracks params key by key, so nothing may hide in a default.
"""

from __future__ import annotations

import io
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from worldr1 import config, store
from worldr1.errors import UserError
from worldr1.rounds import to_plain

BASE = "toy"  # the complete profile every overlay's chain ends at


def folder() -> Traversable:
    """Where the profiles are: this package (tests point it elsewhere)."""
    return resources.files(__package__)


def available() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in folder().iterdir() if p.name.endswith(".yaml"))


def round_trip() -> YAML:
    yaml = YAML()  # comments and key order survive
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


def load(name: str) -> CommentedMap:
    """Profile `name`, complete: the base with the overlays of `name`'s chain merged on in turn."""
    if name not in available():
        raise UserError(f"unknown profile {name!r}", f"use one of {', '.join(available())}")
    chain, docs = [name], []
    while True:
        doc = round_trip().load(folder().joinpath(f"{chain[-1]}.yaml").read_text(encoding="utf-8"))
        if "extends" not in doc:
            break
        docs.append((doc, _split_header(doc)))  # the header describes the profile; the rest is the file's
        parent = doc.pop("extends")
        doc.ca.items.pop("extends", None)
        if parent not in available():
            raise UserError(
                f"profile {chain[-1]} extends unknown profile {parent!r}", f"extend one of {', '.join(available())}"
            )
        if parent in chain:
            raise UserError(
                f"profile {chain[-1]} extends {parent}, a loop: {' -> '.join([*chain, parent])}",
                f"end the chain at a complete profile ({BASE})",
            )
        chain.append(parent)
    base, tail = doc, _normalize(doc)
    for (overlay, description), overlay_name in zip(reversed(docs), reversed(chain[:-1]), strict=True):
        _normalize(overlay)
        _merge(base, overlay, overlay_name, chain[-1])
        if description:
            base.ca.comment[1] = _tokens(_describe(_lines(base.ca.comment[1]), description))
    _set_tail(base, tail)
    return base


def profile_text(name: str) -> str:
    """Profile `name`, merged, as the YAML text `profile use` writes (less the user's rounds)."""
    return dump(load(name))


def dump(doc: CommentedMap) -> str:
    buf = io.StringIO()
    round_trip().dump(doc, buf)
    return buf.getvalue()


def use_profile(path: str | Path, name: str) -> None:
    """Rewrite params.yaml at `path` from profile `name`, keeping its rounds."""
    path = Path(path)
    yaml = round_trip()
    doc = load(name)
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
    store.write_text(str(path), dump(doc))


# --- merging ------------------------------------------------------------------------------------
# ruamel keeps a comment line wherever its parser met it: above a key, in the parent's slot before a
# nested mapping's first key, or at the end of the previous value's last line token (however deep).
# `_normalize` moves every comment line to the key below it (`ca.items[key][1]`, which ruamel writes
# the same way), so a key's comments travel with it; the lines below the last key are the tail.


def _lines(tokens: list[CommentToken] | None) -> list[str]:
    """Comment tokens as text lines, indented; a blank line is ''."""
    lines: list[str] = []
    for token in tokens or []:
        first, *rest = token.value.removesuffix("\n").split("\n")
        lines.append(" " * token.column + first if first else "")
        lines.extend(rest)
    return lines


def _tokens(lines: list[str]) -> list[CommentToken]:
    return [CommentToken(line.lstrip(" ") + "\n", CommentMark(len(line) - len(line.lstrip(" ")))) for line in lines]


def _slot(container: CommentedMap | CommentedSeq, key: Any) -> list[Any]:
    return container.ca.items.setdefault(key, [None, None, None, None])


def _normalize(doc: CommentedMap) -> list[str]:
    """Put every comment line above a key into that key's slot; return the lines below the last key."""
    pending: list[str] = []

    def end_of_line(token: CommentToken | None) -> CommentToken | None:
        """Keep the comment on the value's own line; the lines after it go to the next key."""
        if token is None:
            return None
        first, _, rest = token.value.partition("\n")
        pending.extend(rest.removesuffix("\n").split("\n") if rest else [])
        if not first:
            return None
        token.value = first + "\n"
        return token

    def walk(node: Any, top: bool) -> None:
        if isinstance(node, CommentedMap) and not node.fa.flow_style():
            if not top and node.ca.comment and node.ca.comment[1]:
                pending.extend(_lines(node.ca.comment[1]))  # above the first key
                node.ca.comment[1] = None
            for key, value in node.items():
                slot = node.ca.items.get(key)
                if slot and slot[3]:
                    slot[3] = None  # the nested mapping's comment before its first key, again
                above = pending + _lines(slot[1] if slot else None)
                pending.clear()
                if above or slot:
                    _slot(node, key)[1] = _tokens(above) or None
                walk(value, False)
                if slot:
                    slot[2] = end_of_line(slot[2])
        elif isinstance(node, CommentedSeq) and not node.fa.flow_style():
            for index, value in enumerate(node):
                walk(value, False)
                slot = node.ca.items.get(index)
                if slot:
                    slot[0] = end_of_line(slot[0])
        if isinstance(node, (CommentedMap, CommentedSeq)) and getattr(node.ca, "end", None):
            pending.extend(_lines(node.ca.end))  # below the container's last line
            node.ca.end = []

    walk(doc, True)
    return list(pending)


def _split_header(overlay: CommentedMap) -> list[str]:
    """An overlay's header (its comment lines up to the first blank line); the lines after it stay
    with its first key."""
    lines = _lines(overlay.ca.comment[1]) if overlay.ca.comment else []
    blank = lines.index("") if "" in lines else len(lines)
    header, rest = lines[:blank], [line for line in lines[blank:] if line]
    if overlay.ca.comment:
        overlay.ca.comment[1] = None
    if rest and overlay:
        slot = _slot(overlay, next(iter(overlay)))
        slot[1] = _tokens(rest + _lines(slot[1]))
    return header


def _describe(header: list[str], description: list[str]) -> list[str]:
    """The base's header with its description (from `Profile: ` to the header's last comment line)
    swapped for an overlay's."""
    at = next((i for i, line in enumerate(header) if "Profile: " in line), None)
    if at is None:
        raise ValueError("the base profile's header has no 'Profile: ' description to replace")
    last = max(i for i, line in enumerate(header) if line)
    lead = header[at][: header[at].index("Profile: ")].rstrip()
    return header[:at] + ([lead] if lead != "#" else []) + description + header[last:]


def _comment_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """(the blank lines leading a key's comment block, its comment lines)."""
    lead = next((i for i, line in enumerate(lines) if line), len(lines))
    return lines[:lead], lines[lead:]


def _merge(base: CommentedMap, overlay: CommentedMap, name: str, base_name: str, where: str = "") -> None:
    for key, value in overlay.items():
        if key not in base:
            raise UserError(
                f"profile {name} sets {where}{key}, which is no param of the base profile {base_name}",
                f"correct the key, or add the param to {base_name}.yaml first",
            )
        new = overlay.ca.items.get(key, [None, None, None, None])
        old = _slot(base, key)
        blanks, comments = _comment_lines(_lines(old[1]))
        new_comments = _comment_lines(_lines(new[1]))[1]
        if isinstance(value, CommentedMap) and isinstance(base[key], CommentedMap):
            _merge(base[key], value, name, base_name, f"{where}{key}.")
            # A mapping keeps the base's comments unless the overlay gives its own.
            old[1] = _tokens(blanks + (new_comments or comments)) or None
            old[2] = new[2] or old[2]
        else:
            base[key] = value
            old[1] = _tokens(blanks + new_comments) or None
            old[2] = new[2]


def _set_tail(doc: CommentedMap, tail: list[str]) -> None:
    """Put the comment lines below the last key back after its value (where `rounds` then follows)."""
    if not tail:
        return
    node, key = doc, next(reversed(doc))
    while isinstance(node[key], CommentedMap) and not node[key].fa.flow_style() and node[key]:
        node, key = node[key], next(reversed(node[key]))
    slot = _slot(node, key)
    eol = slot[2].value.removesuffix("\n") if slot[2] else ""
    column = slot[2].column if slot[2] else 0
    slot[2] = CommentToken(eol + "\n" + "\n".join(tail) + "\n", CommentMark(column))
