"""A local transformers causal LM as the enhancer's chat model: a folder or an HF-cache repo id,
offline, through the tokenizer's chat template, batched, bf16 on a GPU."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worldr1 import weights
from worldr1.enhance.chat import Reply
from worldr1.enhance.instructions import Message
from worldr1.errors import UserError


def fingerprint(folder: Path) -> str:
    """The model folder's config and the names and sizes of its weight and tokenizer files: a
    re-downloaded or fine-tuned copy under the same name is another model to the cache."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.iterdir()):
        if f.is_file() and (f.suffix in {".safetensors", ".bin", ".json", ".model", ".jinja"}):
            h.update(json.dumps([f.name, f.stat().st_size]).encode())
    return h.hexdigest()[:12]


class LocalChat:
    """Resolving the folder is at once (a missing one is an error before any work); loading the model
    waits for the first answer asked for, so a run the cache answers never loads it."""

    def __init__(self, model: str, temperature: float, max_new_tokens: int, batch: int) -> None:
        self.name = model
        as_path = Path(model).expanduser()
        if model.startswith((".", "/", "~")) or as_path.exists():
            if not (as_path / "config.json").is_file():
                what = "has no config.json" if as_path.is_dir() else "not found"
                raise UserError(
                    f"model folder {model} {what}",
                    "fix prompts.enhance.model: a folder holding a model's config.json and weights",
                )
            self.folder = as_path
        else:
            self.folder = weights.require(model, "config.json")
        self.temperature, self.max_new_tokens, self.batch = temperature, max_new_tokens, batch
        self.chunk = batch
        settings = f"t={temperature},max_new_tokens={max_new_tokens}"
        self.identity = f"local:{model}@{fingerprint(self.folder)}:{settings}"
        self._loaded: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        if self._loaded is not None:
            return self._loaded
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"model {self.name}: its tokenizer cannot be loaded ({exc})",
                "give a complete model folder (tokenizer files too)",
            ) from None
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(
                f"model {self.name} has no chat template",
                "use an instruction-tuned (chat) model, whose tokenizer has one",
            )
        tokenizer.padding_side = "left"  # generation continues every row from its end
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(self.folder, local_files_only=True, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise UserError(
                f"model {self.name} cannot be loaded as a causal LM ({exc})", "give a text-generation model"
            ) from None
        self._loaded = (tokenizer, model.to(device).eval(), device)
        return self._loaded

    def complete(self, conversations: Sequence[list[Message]], seeds: Sequence[int]) -> list[Reply]:
        """Answers in batches of `batch`; a batch samples from its first conversation's seed (generate
        takes one RNG), so an answer depends on its batch, as with any batched sampler."""
        import torch

        tokenizer, model, device = self._load()
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        replies: list[Reply] = []
        for start in range(0, len(conversations), self.batch):
            chunk = list(conversations[start : start + self.batch])
            inputs: Any = tokenizer.apply_chat_template(
                chunk, add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True
            )
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seeds[start] % 2**63)
                with torch.inference_mode():
                    out = model.generate(
                        **inputs, max_new_tokens=self.max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
                    )
            new = out[:, inputs["input_ids"].shape[1] :]
            replies += [Reply(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
        return replies
