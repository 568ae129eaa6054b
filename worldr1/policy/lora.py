"""The LoRA adapter: attached through peft, saved in diffusers' format so `WanPipeline.load_lora_weights` reads it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from peft import LoraConfig as PeftLoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import SafetensorError, safe_open

from worldr1.config import LoraConfig, PolicyConfig
from worldr1.device import seeded
from worldr1.distributed import World, shard_frozen
from worldr1.errors import UserError
from worldr1.ids import derive_seed
from worldr1.store import sort_safetensors_metadata

if TYPE_CHECKING:
    from diffusers import ModelMixin

ADAPTER = "default"
WEIGHTS = "pytorch_lora_weights.safetensors"
PREFIX = "transformer."


def lora_config(cfg: LoraConfig) -> PeftLoraConfig:
    # peft annotates lora_alpha as int but scales by it as a float (alpha / r).
    alpha = cast(int, cfg.alpha)
    return PeftLoraConfig(r=cfg.rank, lora_alpha=alpha, target_modules=list(cfg.targets), init_lora_weights=True)


def attach(transformer: torch.nn.Module, cfg: LoraConfig, seed: int) -> None:
    """Add a fresh adapter: A random (from `seed`), B zero, so the model is unchanged until trained."""
    with seeded(seed):
        try:
            transformer.add_adapter(lora_config(cfg), adapter_name=ADAPTER)  # type: ignore[operator]
        except ValueError as exc:  # peft: a target module name matches nothing
            raise UserError(
                f"policy.lora.targets {list(cfg.targets)} do not fit this model ({exc})",
                "name attention projections of WanTransformer3DModel, e.g. to_q, to_k, to_v, to_out.0",
            ) from None


def save(transformer: torch.nn.Module, directory: Path, cfg: LoraConfig) -> None:
    """Write the adapter as diffusers' `pytorch_lora_weights.safetensors` (with rank/alpha metadata)."""
    state = {
        k: v.detach().to("cpu").contiguous()
        for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER).items()
    }
    metadata = lora_config(cfg).to_dict()
    metadata["target_modules"] = sorted(metadata["target_modules"])
    from diffusers import WanPipeline  # here: it imports transformers, which the toy policy never needs

    WanPipeline.save_lora_weights(
        directory,
        transformer_lora_layers=state,
        transformer_lora_adapter_metadata=json.loads(json.dumps(metadata, default=str)),
    )
    sort_safetensors_metadata(directory / WEIGHTS)


def load(transformer: torch.nn.Module, directory: Path, cfg: LoraConfig) -> None:
    """Load the weights of an adapter saved by `save` into the attached adapter (same rank and targets)."""
    path = directory / WEIGHTS
    if not path.is_file():
        raise UserError(
            f"no LoRA adapter at {path}", "run the stage that makes it first (dvc repro), or fix the round's prev"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k.removeprefix(PREFIX): f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise UserError(f"the adapter file {path} is unreadable ({exc})", "rerun the stage that wrote it") from None
    own = get_peft_model_state_dict(transformer, adapter_name=ADAPTER)
    mismatched = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if mismatched or len(state) != len(own):
        raise UserError(
            f"the adapter in {directory} does not fit policy.lora (rank {cfg.rank}, targets {list(cfg.targets)}): "
            f"{len(mismatched)} of {len(own)} tensors differ",
            "use the lora settings it was trained with, or start again from base",
        )
    result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER)
    if getattr(result, "unexpected_keys", None):
        raise UserError(f"the adapter in {directory} has unexpected tensors", "start again from base")


class LoraPolicy:
    """What every policy with a diffusers transformer and a peft adapter shares (Wan, the toy policy):
    the reference (adapter off), the trainable parameters, and the adapter's life cycle."""

    transformer: ModelMixin  # a diffusers transformer with peft's adapter methods
    device: torch.device
    dtype: torch.dtype
    sharded: bool = False  # over the ranks, with FSDP (`shard`)
    attention: str = "unpinned"  # the diffusers attention backend `load_policy` pinned

    @contextlib.contextmanager
    def reference(self) -> Iterator[None]:
        self.transformer.disable_adapters()
        try:
            yield
        finally:
            self.transformer.enable_adapters()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.transformer.named_parameters() if "lora_" in n]

    def prepare_training(self) -> None:
        """Gradient checkpointing on GPU, where activations of 81 frames at 480p do not fit
        otherwise; on the CPU it would only cost time. It recomputes, so the numbers stay the same."""
        if self.device.type == "cuda":
            self.transformer.enable_gradient_checkpointing()

    def shard(self, world: World) -> None:
        """Shard the frozen transformer over the ranks (FSDP), one Wan block at a time; the adapter
        stays whole on every rank. After this, every rank must run the transformer equally often."""
        shard_frozen(world, self.transformer, list(self.transformer.blocks), self.trainable_parameters())
        self.sharded = world.size > 1

    def attach_adapter(self, cfg: PolicyConfig, seed: int, directory: Path | None = None) -> None:
        """A fresh adapter (seeded), or the one saved in `directory` by an earlier round."""
        attach(self.transformer, cfg.lora, derive_seed(seed, "lora-init"))
        if directory is not None:
            load(self.transformer, directory, cfg.lora)
        self.transformer.to(device=self.device)
        for p in self.trainable_parameters():
            # Adapter weights stay fp32 for the optimizer; peft casts activations around them.
            p.data = p.data.float()
            p.requires_grad_(True)

    def load_adapter(self, directory: Path, cfg: PolicyConfig) -> None:
        """Swap the attached adapter's weights for those saved in `directory`."""
        load(self.transformer, directory, cfg.lora)

    def save_adapter(self, directory: Path, cfg: PolicyConfig) -> None:
        save(self.transformer, directory, cfg.lora)
