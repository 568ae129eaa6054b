"""Depth Anything 3 behind the `Reconstructor` protocol, through the package's own `inference`.

`depth-anything-3` is installed without its declared pins (they ask for numpy<2, an xformers
built for another torch, open3d); the Makefile installs it with `--no-deps` and pyproject lists
what it really imports. Without xformers it uses a plain MLP, which is what runs here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from worldr1 import weights
from worldr1.device import default_device, seeded
from worldr1.errors import UserError
from worldr1.geometry.cameras import resize_intrinsics, to_4x4
from worldr1.geometry.gaussians import Gaussians
from worldr1.reconstruct.base import Reconstruction

TINY_SEED = 4321
PRESETS = {
    "da3-small": "depth-anything/DA3-SMALL",
    "da3-base": "depth-anything/DA3-BASE",
    "da3-large": "depth-anything/DA3-LARGE",
    "da3-giant": "depth-anything/DA3-GIANT",
}


def _import_api():  # noqa: ANN202
    try:
        from depth_anything_3.api import DepthAnything3
        from depth_anything_3.utils.logger import LOG_LEVELS, logger
    except ImportError as exc:
        raise UserError(
            f"the depth-anything-3 package cannot be imported ({exc})",
            "install it as the Makefile does: pip install --no-deps depth-anything-3==0.1.1",
        ) from None
    # DA3 prints every step at INFO to stdout; keep warnings and errors only.
    logger.level = min(logger.level, LOG_LEVELS["WARN"])
    return DepthAnything3


class DA3Reconstructor:
    def __init__(self, model: str, process_res: int, device: torch.device | None = None) -> None:
        api = _import_api()
        self.device = device or default_device()
        self.process_res = process_res
        if model == "tiny":
            # DA3-SMALL's architecture from the package's own config, fixed random weights: no download.
            with seeded(TINY_SEED):
                self.model = api(model_name="da3-small")
            self.name = "da3-small (random weights)"
        else:
            repo = PRESETS.get(model, model)
            path = weights.require(repo, "config.json")
            try:
                self.model = api.from_pretrained(str(path), local_files_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise UserError(
                    f"could not load Depth Anything 3 from {path}: {exc}",
                    "check that the folder holds config.json and model.safetensors",
                ) from None
            self.name = repo
        self.model = self.model.to(self.device).eval()
        # Models with a Gaussian head (DA3-GIANT) predict splats; the others get pixel-aligned ones.
        self.has_gaussian_head = getattr(self.model.model, "gs_head", None) is not None

    @torch.no_grad()
    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        if frames.ndim != 4 or frames.shape[0] < 2:
            raise ValueError(f"need at least 2 frames, got {frames.shape[0] if frames.ndim == 4 else 0}")
        pred = self.model.inference(list(frames), process_res=self.process_res, infer_gs=self.has_gaussian_head)
        h, w = pred.depth.shape[1:]
        frame_hw = (int(frames.shape[1]), int(frames.shape[2]))
        return Reconstruction(
            depth=torch.from_numpy(np.ascontiguousarray(pred.depth)).float(),
            conf=torch.from_numpy(np.ascontiguousarray(pred.conf)).float()
            if pred.conf is not None
            else torch.ones_like(torch.from_numpy(pred.depth)).float(),
            images=np.asarray(pred.processed_images),
            extrinsics=to_4x4(pred.extrinsics),
            intrinsics=resize_intrinsics(np.asarray(pred.intrinsics, np.float64), (h, w), frame_hw),
            frame_hw=frame_hw,
            gaussians=_gaussians(pred.gaussians) if pred.gaussians is not None else None,
        )


def _gaussians(g) -> Gaussians:  # noqa: ANN001
    """DA3's world-space splats (batch 1) as ours: SH `[B, N, 3, K]` -> `[N, K, 3]`."""
    opac = g.opacities[0]
    if opac.ndim > 1:  # opacity as SH: its DC term
        opac = opac[..., 0].flatten()
    return Gaussians(
        g.means[0].float(),
        g.scales[0].float(),
        g.rotations[0].float(),
        opac.float().clamp(0, 1),
        sh=g.harmonics[0].float().transpose(1, 2).contiguous(),
    )


def load_da3(model: str, process_res: int) -> DA3Reconstructor:
    if model != "tiny" and model not in PRESETS and "/" not in model and not Path(model).exists():
        raise UserError(
            f"unknown reconstruct.model {model!r}",
            f"use tiny, {', '.join(PRESETS)}, a Hugging Face repo id or a local folder",
        )
    return DA3Reconstructor(model, process_res)
