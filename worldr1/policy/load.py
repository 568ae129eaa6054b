"""The policy `policy.model` names: the toy policy the pipeline trains, or a Wan model."""

from __future__ import annotations

from pathlib import Path

import torch

from worldr1.config import Policy as PolicyParams
from worldr1.policy.lora import LoraPolicy


def load_policy(cfg: PolicyParams, device: torch.device | None = None, root: str = ".") -> LoraPolicy:
    if cfg.model == "toy":
        from worldr1.policy.toy import load_toy
        from worldr1.store import Paths

        return load_toy(Path(Paths(root).toy_policy), cfg.dtype, device)
    from worldr1.policy.wan import load_wan

    return load_wan(cfg, device)
