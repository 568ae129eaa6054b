"""Policies: model loading (Wan, tiny), text encoding, LoRA adapters."""

from worldr1.policy.base import Policy, default_device, resolve_dtype, seeded
from worldr1.policy.wan import PRESETS, WanPolicy, load_wan

__all__ = ["PRESETS", "Policy", "WanPolicy", "default_device", "load_wan", "resolve_dtype", "seeded"]
