"""The toy policy: a small Wan transformer (diffusers' WanTransformer3DModel) over the latents of a
small frame autoencoder, with a word-level text encoder, all three trained by the `toy-pretrain` stage.

The layout is Wan's in miniature: the autoencoder stands for Wan's VAE (4x spatial compression per
frame, latents normalised by their training mean and std), the transformer models latent videos
`[B, C, F, h, w]`, and the word encoder stands for UMT5. Behind the `Policy` interface and with the
same LoRA code as Wan, rollout, update and evaluate are the same code for both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import WanTransformer3DModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from worldr1.config import ToyPolicyNetConfig
from worldr1.device import default_device, seeded
from worldr1.errors import UserError
from worldr1.policy.base import resolve_dtype
from worldr1.policy.lora import LoraPolicy

NAME = "toy"
PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
TOKENIZER = "tokenizer.json"
TEXT_ENCODER = "text_encoder.safetensors"
AUTOENCODER = "autoencoder.safetensors"
TRANSFORMER = "transformer"
# x-prediction's velocity divides by sigma; below this it would amplify the model's error without bound.
MIN_SIGMA = 0.05


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


@dataclass(frozen=True)
class ToyTokenizer:
    """Words to ids (pad 0, unknown 1), padded or cut to `max_length`; the vocabulary is the
    training prompts' words, so a prompt in the toy grammar has no unknown word."""

    vocab: tuple[str, ...]
    max_length: int

    @classmethod
    def fit(cls, texts: list[str], max_length: int) -> ToyTokenizer:
        return cls((PAD, UNK, *sorted({w for t in texts for w in words(t)})), max_length)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        index = {w: i for i, w in enumerate(self.vocab)}
        ids = torch.zeros((len(texts), self.max_length), dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [index.get(w, 1) for w in words(text)][: self.max_length]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return ids

    def to_json(self) -> str:
        return json.dumps({"vocab": list(self.vocab), "max_length": self.max_length}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ToyTokenizer:
        data = json.loads(text)
        return cls(tuple(data["vocab"]), int(data["max_length"]))


class ToyTextEncoder(torch.nn.Module):
    """Word and position embeddings: the prompt's word order carries the meaning ("orbit left, then
    push in"), and Wan's cross-attention reads the sequence. Padding encodes to zeros, as in Wan."""

    def __init__(self, vocab_size: int, max_length: int, dim: int) -> None:
        super().__init__()
        self.words = torch.nn.Embedding(vocab_size, dim)
        self.positions = torch.nn.Embedding(max_length, dim)
        self.norm = torch.nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        out = self.norm(self.words(ids) + self.positions(pos)[None])
        return out * (ids != 0)[..., None].to(out.dtype)


def toy_transformer(net: ToyPolicyNetConfig, seed: int) -> WanTransformer3DModel:
    with seeded(seed):
        return WanTransformer3DModel(
            patch_size=(1, net.patch, net.patch),
            num_attention_heads=net.heads,
            attention_head_dim=net.head_dim,
            in_channels=net.latent_channels,
            out_channels=net.latent_channels,
            text_dim=net.text_dim,
            freq_dim=net.dim,
            ffn_dim=net.ffn_dim,
            num_layers=net.layers,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        )


def _block(cin: int, cout: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, 1, 1), torch.nn.GroupNorm(8, cout), torch.nn.SiLU())


class ToyAutoencoder(torch.nn.Module):
    """Frames `[N, 3, H, W]` in [-1, 1] <-> latents `[N, C, H/4, W/4]`, normalised to zero mean and
    unit std per channel over the training frames (the `mean`/`std` buffers, as Wan's VAE config has)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        down = torch.nn.AvgPool2d(2)
        self.encoder = torch.nn.Sequential(
            _block(3, width),
            down,
            _block(width, 2 * width),
            down,
            _block(2 * width, 2 * width),
            torch.nn.Conv2d(2 * width, channels, 1),
        )
        up = torch.nn.Upsample(scale_factor=2.0, mode="nearest")
        self.decoder = torch.nn.Sequential(
            _block(channels, 2 * width),
            _block(2 * width, 2 * width),
            up,
            _block(2 * width, width),
            up,
            _block(width, width),
            torch.nn.Conv2d(width, 3, 3, 1, 1),
        )
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (self.encoder(x) - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z * self.std.view(1, -1, 1, 1) + self.mean.view(1, -1, 1, 1))


def frames_to_pixels(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 `[..., H, W, 3]` -> float `[..., 3, H, W]` in [-1, 1]."""
    return (torch.as_tensor(np.asarray(frames)).float() / 127.5 - 1.0).movedim(-1, -3).contiguous()


def video_latents(ae: ToyAutoencoder, frames: torch.Tensor | np.ndarray, batch: int = 256) -> torch.Tensor:
    """uint8 videos `[B, F, H, W, 3]` -> latent videos `[B, C, F, h, w]` (frame by frame)."""
    x = frames_to_pixels(frames)
    b, f = x.shape[:2]
    flat = x.flatten(0, 1)
    with torch.no_grad():
        z = torch.cat([ae.encode(flat[i : i + batch]) for i in range(0, len(flat), batch)])
    return z.view(b, f, *z.shape[1:]).movedim(2, 1).contiguous()


class ToyPolicy(LoraPolicy):
    def __init__(
        self,
        transformer: WanTransformer3DModel,
        text_encoder: ToyTextEncoder,
        tokenizer: ToyTokenizer,
        autoencoder: ToyAutoencoder,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        name: str = NAME,
    ) -> None:
        # diffusers warns on any dtype cast of Wan (its norms want fp32): cast only to a different dtype.
        self.transformer = (
            transformer.to(device=device) if transformer.dtype == dtype else transformer.to(device, dtype)
        )
        self.text_encoder = text_encoder.to(device=device)
        self.autoencoder = autoencoder.to(device=device)
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.name = name
        for module in (self.transformer, self.text_encoder, self.autoencoder):
            module.requires_grad_(False)
            module.eval()

    @classmethod
    def fresh(
        cls, net: ToyPolicyNetConfig, prompts: list[str], seed: int, device: torch.device | None = None
    ) -> ToyPolicy:
        """Random weights, for the pretrain stage to train (and tests to build cheaply)."""
        tokenizer = ToyTokenizer.fit(prompts, net.max_words)
        with seeded(seed + 1):
            encoder = ToyTextEncoder(len(tokenizer.vocab), net.max_words, net.text_dim)
        with seeded(seed + 2):
            ae = ToyAutoencoder(net.latent_channels, net.autoencoder_width)
        return cls(toy_transformer(net, seed), encoder, tokenizer, ae, device or torch.device("cpu"))

    # -- Policy interface ------------------------------------------------------------------

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, ...]:
        return (self.autoencoder.mean.numel(), frames, height // 4, width // 4)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.text_encoder(self.tokenizer(texts).to(self.device)).to(self.dtype)

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The transformer predicts the clean video (x-prediction) and the velocity follows from it.

        A small model trained briefly cannot carry Gaussian noise through itself accurately, which
        v-prediction asks of it near sigma = 1 (its samples stay noisy); predicting the clean video
        leaves the noise to the skip path `x_t` (Li and He, "Back to Basics", 2025)."""
        clean = self.clean(latents, timestep, text)
        sigma = (timestep.to(self.device).float() / 1000).clamp_min(MIN_SIGMA)
        return (latents.float() - clean) / sigma.view(-1, *([1] * (latents.dim() - 1)))

    def clean(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The model's estimate of the clean video under `latents` at `timestep`."""
        out = self.transformer(
            hidden_states=latents.to(self.dtype),
            timestep=timestep.to(self.device),
            encoder_hidden_states=text,
            return_dict=False,
        )[0]
        return out.float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, f = latents.shape[:3]
        x = self.autoencoder.decode(latents.float().movedim(2, 1).flatten(0, 1))  # [B*F, 3, H, W]
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return x.view(b, f, *x.shape[1:]).permute(0, 1, 3, 4, 2).cpu()

    # -- weights -----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """The pretrained weights (before any adapter): transformer in diffusers' format, text encoder, vocabulary."""
        self.transformer.save_pretrained(directory / TRANSFORMER, safe_serialization=True)
        save_file({k: v.contiguous() for k, v in self.text_encoder.state_dict().items()}, str(directory / TEXT_ENCODER))
        save_file({k: v.contiguous() for k, v in self.autoencoder.state_dict().items()}, str(directory / AUTOENCODER))
        (directory / TOKENIZER).write_text(self.tokenizer.to_json() + "\n")


def load_toy(directory: Path, dtype: str = "auto", device: torch.device | None = None) -> ToyPolicy:
    """The toy policy the `toy-pretrain` stage wrote to `directory`."""
    device = device or default_device()
    if not (directory / TOKENIZER).is_file():
        raise UserError(
            f"no pretrained toy policy in {directory}",
            "run `dvc repro toy-pretrain` (policy.model toy is trained by the pipeline itself)",
        )
    try:
        tokenizer = ToyTokenizer.from_json((directory / TOKENIZER).read_text())
        transformer = WanTransformer3DModel.from_pretrained(directory / TRANSFORMER, local_files_only=True)
        state = load_file(str(directory / TEXT_ENCODER))
        encoder = ToyTextEncoder(len(tokenizer.vocab), tokenizer.max_length, state["words.weight"].shape[1])
        encoder.load_state_dict(state)
        ae_state = load_file(str(directory / AUTOENCODER))
        ae = ToyAutoencoder(ae_state["mean"].numel(), ae_state["encoder.0.0.weight"].shape[0])
        ae.load_state_dict(ae_state)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise UserError(
            f"the toy policy in {directory} is unreadable ({str(exc).splitlines()[0][:160]})",
            "rerun `dvc repro -f toy-pretrain`",
        ) from None
    return ToyPolicy(transformer, encoder, tokenizer, ae, device, resolve_dtype(dtype, device))
