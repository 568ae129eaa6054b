"""Reward terms (their registry: terms.py), their combination, group advantages and guards."""

from __future__ import annotations

from pathlib import Path

from worldr1.errors import UserError


def load_judge(name: str):  # noqa: ANN201
    """The s_meta judge named by `reward.judge`, or None when it is off."""
    if name == "off":
        return None
    from worldr1.rewards.meta import PRESETS, QwenJudge

    if name != "tiny" and name not in PRESETS and "/" not in name and not Path(name).exists():
        raise UserError(f"unknown reward.judge {name!r}", f"use off, tiny, {', '.join(PRESETS)}, a repo id or a folder")
    return QwenJudge(name)
