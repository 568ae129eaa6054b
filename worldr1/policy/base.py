"""What the sampler and the trainer know of a policy: encode text, predict velocity, decode latents."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from worldr1.config import PolicyConfig


@runtime_checkable
class Policy(Protocol):
    """A text-to-video flow model with a LoRA adapter (Wan, tiny Wan, the toy policy).

    Latents are float32 at this boundary whatever the model computes in; `velocity` is the
    model's prediction `noise - data` at `timestep` (= 1000 * sigma).
    """

    device: torch.device
    #: identifies the base weights in artifacts' metadata, e.g. "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" or "tiny".
    name: str

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, ...]:
        """Shape of one sample's latents (no batch dimension)."""
        ...

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings `[B, L, D]`, padded to a fixed length so prompts batch together."""
        ...

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames `uint8 [B, F, H, W, 3]` of the latents."""
        ...

    def reference(self) -> contextlib.AbstractContextManager[None]:
        """Inside: the model with its adapter disabled (the KL reference)."""
        ...

    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...

    def load_adapter(self, directory: Path, cfg: PolicyConfig) -> None:
        """Swap the attached adapter's weights for those saved in `directory`."""
        ...


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on cuda (Wan overflows in fp16), fp32 on the CPU."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]
