"""The policy `policy.model` names: the toy policy the pipeline trains, or a Wan model."""

from __future__ import annotations

from pathlib import Path

import torch

from worldr1.config import PolicyConfig
from worldr1.policy.attention import pin_attention, resolve_attention
from worldr1.policy.lora import LoraPolicy


def load_policy(cfg: PolicyConfig, device: torch.device | None = None, root: str = ".") -> LoraPolicy:
    """The policy, its transformer's attention pinned to `policy.attention` (`policy.attention` names
    the kernel in use afterwards), so every stage that runs it computes the same attention."""
    policy: LoraPolicy
    if cfg.model == "toy":
        from worldr1.policy.toy import load_toy
        from worldr1.store import Paths

        policy = load_toy(Path(Paths(root).toy_policy), cfg.dtype, device)
    else:
        from worldr1.policy.wan import load_wan

        policy = load_wan(cfg, device)
    policy.attention = resolve_attention(cfg.attention, policy.device, policy.dtype)
    pin_attention(policy.transformer, policy.attention)
    return policy
