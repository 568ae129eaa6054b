"""HPSv2.1 as `r_gen`, World-R1's general reward: a human-preference CLIP (open_clip's ViT-H-14,
fine-tuned; `HPS_v2.1_compressed.pt` from the `xswu/HPSv2` repo) scores one random frame of the
video against its prompt, as the cosine of the two embeddings (HPSv2's own score, about 0.2-0.35
for ordinary images; no logit scale).

World-R1 draws the frame with an unseeded `random.randint`; here it is drawn from the sample's own
seed, so a rerun scores the same frame. The weights are found locally (a folder under
`$WORLDR1_MODELS`, or the Hugging Face cache), never downloaded. `tiny` builds the same classes at
toy sizes with fixed random weights (open_clip's `CLIP` from a config), for tests and CPU runs.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from worldr1 import weights
from worldr1.device import default_device, seeded
from worldr1.errors import UserError

REPO = "xswu/HPSv2"
CHECKPOINT = "HPS_v2.1_compressed.pt"
ARCHITECTURE = "ViT-H-14"
TINY_SEED = 2101


def pick_frame(frames: int, seed: int) -> int:
    """The frame HPSv2.1 scores: uniform over the video, from the sample's seed."""
    return int(np.random.default_rng(seed).integers(frames))


class HPSv21:
    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        name: str,
        device: torch.device,
    ) -> None:
        self.model: Any = model.to(device).eval()  # open_clip's CLIP: encode_text, encode_image
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self._text: dict[str, torch.Tensor] = {}  # a group's samples share their prompt

    @classmethod
    def load(cls, device: torch.device | None = None) -> HPSv21:
        """ViT-H-14 with the HPSv2.1 checkpoint from a local folder or the HF cache."""
        import open_clip

        device = device or default_device()
        folder = weights.require(REPO, CHECKPOINT)
        model, _, preprocess = open_clip.create_model_and_transforms(ARCHITECTURE, pretrained=None, device="cpu")
        return cls.from_checkpoint(folder / CHECKPOINT, model, preprocess, device)

    @classmethod
    def from_checkpoint(
        cls, path: Path, model: torch.nn.Module, preprocess: Callable[[Image.Image], torch.Tensor], device: torch.device
    ) -> HPSv21:
        import open_clip

        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            state = checkpoint.get("state_dict", checkpoint)
            model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        except (OSError, RuntimeError, AttributeError, KeyError, EOFError, pickle.UnpicklingError) as exc:
            raise UserError(
                f"could not load HPSv2.1 from {path}: {str(exc).splitlines()[0][:200]}",
                f"replace it with a complete copy of {CHECKPOINT} from {REPO}",
            ) from None
        return cls(model, preprocess, open_clip.get_tokenizer(ARCHITECTURE), f"hpsv2.1 ({path})", device)

    @classmethod
    def tiny(cls, device: torch.device | None = None) -> HPSv21:
        """open_clip's CLIP at toy sizes with fixed random weights; ViT-H-14's tokenizer and preprocessing."""
        import open_clip

        with seeded(TINY_SEED):
            model = open_clip.CLIP(
                embed_dim=16,
                vision_cfg=open_clip.CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
                text_cfg=open_clip.CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
            )
        preprocess = open_clip.image_transform(32, is_train=False)
        return cls(
            model,
            preprocess,
            open_clip.get_tokenizer(ARCHITECTURE),
            "hpsv2.1 (tiny random)",
            device or torch.device("cpu"),
        )

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return torch.autocast("cuda", torch.bfloat16) if self.device.type == "cuda" else contextlib.nullcontext()

    @torch.no_grad()
    def score(self, frames: np.ndarray, prompt: str, seed: int) -> float:
        if prompt not in self._text:
            with self._autocast():
                features = self.model.encode_text(self.tokenizer([prompt]).to(self.device), normalize=True)
            self._text = {prompt: features.float()}  # one prompt at a time: a round scores group by group
        image = self.preprocess(Image.fromarray(np.ascontiguousarray(frames[pick_frame(len(frames), seed)])))
        with self._autocast():
            image_features = self.model.encode_image(image[None].to(self.device), normalize=True)
        return float((image_features.float() * self._text[prompt]).sum())
