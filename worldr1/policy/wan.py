"""Wan 2.1 T2V (diffusers) behind the `Policy` interface, with its LoRA adapter.

The text encoding and latent (de)normalisation are WanPipeline's own, called on the loaded
pipeline, so our sampler sees exactly the numbers `WanPipeline.__call__` would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanPipeline
from safetensors import SafetensorError

from worldr1 import weights
from worldr1.config import PolicyConfig
from worldr1.device import default_device
from worldr1.errors import UserError
from worldr1.policy import lora
from worldr1.policy.base import resolve_dtype

# The real models by preset name; anything else in policy.model is a repo id or a local folder.
PRESETS = {
    "wan2.1-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "wan2.1-14b": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
}
WAN_MAX_SEQUENCE_LENGTH = 512


class WanPolicy(lora.LoraPolicy):
    def __init__(
        self, pipe: WanPipeline, name: str, device: torch.device, dtype: torch.dtype, max_sequence_length: int
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.device = device
        self.dtype = dtype
        self.max_sequence_length = max_sequence_length
        self.transformer = pipe.transformer
        for module, want in ((pipe.transformer, dtype), (pipe.text_encoder, dtype), (pipe.vae, torch.float32)):
            # Real weights arrive in their dtype (from_pretrained keeps Wan's fp32 norms); only the
            # tiny preset, built in fp32, is cast here. The VAE stays fp32, as diffusers advises.
            if module.dtype != want:
                module.to(dtype=want)
            module.to(device=device)
        for module in (pipe.transformer, pipe.text_encoder, pipe.vae):
            module.requires_grad_(False)

    # -- Policy interface ------------------------------------------------------------------

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, ...]:
        t, s = self.pipe.vae_scale_factor_temporal, self.pipe.vae_scale_factor_spatial
        return (self.transformer.config.in_channels, (frames - 1) // t + 1, height // s, width // s)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        embeds, _ = self.pipe.encode_prompt(
            texts, do_classifier_free_guidance=False, max_sequence_length=self.max_sequence_length, device=self.device
        )
        return embeds.to(self.dtype)

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        out = self.transformer(
            hidden_states=latents.to(self.dtype),
            timestep=timestep.to(self.device),
            encoder_hidden_states=text,
            return_dict=False,
        )[0]
        return out.float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(shape)
        std = torch.tensor(vae.config.latents_std, device=latents.device).view(shape)
        video = vae.decode(latents.float() * std + mean, return_dict=False)[0]
        frames = self.pipe.video_processor.postprocess_video(video, output_type="np")  # [B, F, H, W, 3] in [0, 1]
        return torch.from_numpy(np.round(np.asarray(frames) * 255).clip(0, 255).astype(np.uint8))


def load_wan(cfg: PolicyConfig, device: torch.device | None = None) -> WanPolicy:
    """The policy named by `policy.model`: `tiny`, a preset, a Hugging Face repo id or a local folder."""
    device = device or default_device()
    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.model == "tiny":
        from worldr1.policy.tiny import MAX_SEQUENCE_LENGTH, tiny_pipeline

        return WanPolicy(tiny_pipeline(), "tiny", device, dtype, MAX_SEQUENCE_LENGTH)
    repo = PRESETS.get(cfg.model, cfg.model)
    if "/" not in repo and not Path(repo).exists():
        known = ", ".join(["tiny", *PRESETS])
        raise UserError(
            f"unknown policy.model {cfg.model!r}", f"use one of {known}, a Hugging Face repo id or a local folder"
        )
    path = weights.require(repo, "model_index.json")
    try:
        vae = AutoencoderKLWan.from_pretrained(path, subfolder="vae", torch_dtype=torch.float32, local_files_only=True)
        pipe = WanPipeline.from_pretrained(path, vae=vae, torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise UserError(
            f"could not load Wan from {path}: {exc}", "check that the folder is a complete diffusers snapshot"
        ) from None
    return WanPolicy(pipe, repo, device, dtype, WAN_MAX_SEQUENCE_LENGTH)
