"""Policies: model loading (Wan, tiny, toy), text encoding, LoRA adapters.

The models load lazily: importing the interface (`Policy`, `default_device`) must not import
diffusers and transformers, which cost seconds at every stage's process start.
"""

from typing import Any

from worldr1.device import default_device, seeded
from worldr1.policy.base import Policy, resolve_dtype

__all__ = ["PRESETS", "Policy", "WanPolicy", "default_device", "load_policy", "load_wan", "resolve_dtype", "seeded"]


def __getattr__(name: str) -> Any:
    if name == "load_policy":
        from worldr1.policy.load import load_policy

        return load_policy
    if name in ("PRESETS", "WanPolicy", "load_wan"):
        from worldr1.policy import wan

        return getattr(wan, name)
    raise AttributeError(name)
