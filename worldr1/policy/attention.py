"""The attention kernel, pinned: rollout (no autograd) and update (autograd, perhaps checkpointing and
FSDP) must compute the same attention, or the importance ratio of an on-policy sample is not 1.
Torch's `scaled_dot_product_attention` picks a kernel per call from the inputs (dtype, whether a
gradient is needed, the hardware), so the policy's transformer is set to one diffusers backend
(`policy.attention`) in every stage, and the update's round report names it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from worldr1.errors import UserError

if TYPE_CHECKING:
    from diffusers import ModelMixin

#: torch's own FlashAttention kernel: one kernel for forward with and without autograd, on CUDA in
#: bf16/fp16 and on the CPU (where it is what torch picks anyway, so the toy numbers do not move).
FLASH = "_native_flash"
#: on CUDA in float32, where FlashAttention does not run: the memory-efficient kernel.
EFFICIENT = "_native_efficient"


def resolve_attention(name: str, device: torch.device, dtype: torch.dtype) -> str:
    """`auto` -> the pinned kernel for this device and dtype; any other name must be diffusers'."""
    from diffusers.models.attention_dispatch import AttentionBackendName

    if name == "auto":
        return EFFICIENT if device.type == "cuda" and dtype == torch.float32 else FLASH
    known = [b.value for b in AttentionBackendName]
    if name not in known:
        raise UserError(
            f"unknown policy.attention {name!r}",
            f"use auto, or one of diffusers' attention backends: {', '.join(known)}",
        )
    return name


def pin_attention(transformer: ModelMixin, backend: str) -> None:
    """Every attention module of a diffusers transformer computes with `backend`."""
    # diffusers warns at every call that backends are experimental; the choice here is deliberate.
    quiet = logging.getLogger("diffusers.models.modeling_utils")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        transformer.set_attention_backend(backend)
    finally:
        quiet.setLevel(level)
