"""`s_recon`: agreement between the reconstruction's renders and the video frames, and the motion guard.

World-R1 uses `1 - mean LPIPS(render, frame)`. LPIPS needs torchvision's ImageNet AlexNet weights,
which are not always on disk (they cannot be fetched here), so SSIM stands in when params say so.
PSNR, SSIM and, when its weights are present, LPIPS are all computed for the audit columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from worldr1.errors import UserError

if TYPE_CHECKING:
    from worldr1.rewards.score import TermInput

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` -> float `[F, 3, H, W]` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR (dB) of `[F, 3, H, W]` images in [0, 1]; identical frames give 100 dB, not inf."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return torch.where(mse > 1e-10, -10 * torch.log10(mse.clamp_min(1e-10)), torch.full_like(mse, 100.0))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03), valid region only."""
    size = min(11, a.shape[-1], a.shape[-2])
    w = _gaussian_window(size, 1.5 * size / 11).to(a)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(a, w, groups=3), F.conv2d(b, w, groups=3)
    var_a = F.conv2d(a * a, w, groups=3) - mu_a**2
    var_b = F.conv2d(b * b, w, groups=3) - mu_b**2
    cov = F.conv2d(a * b, w, groups=3) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def alexnet_weights() -> Path:
    """Where torchvision keeps the ImageNet AlexNet that LPIPS builds on."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


@lru_cache(maxsize=1)
def lpips_model() -> torch.nn.Module | None:
    """LPIPS (AlexNet, v0.1) when the `lpips` package and AlexNet's weights are on disk, else None."""
    if not alexnet_weights().is_file():
        return None
    try:
        import lpips
    except ImportError:
        return None
    return lpips.LPIPS(net="alex", verbose=False).eval()


def require_lpips() -> torch.nn.Module:
    model = lpips_model()
    if model is None:
        raise UserError(
            f"reward.recon_metric is lpips but AlexNet's weights ({ALEXNET_FILE}) are not in {alexnet_weights().parent}",
            f"copy {ALEXNET_FILE} from a machine with internet (torchvision's alexnet download) there, "
            "or set reward.recon_metric: ssim",
        )
    return model


@dataclass(frozen=True)
class ReconScore:
    s_recon: float
    psnr: float
    ssim: float
    lpips: float | None
    frames: list[int]


@torch.no_grad()
def s_recon(
    renders: np.ndarray, frames: np.ndarray, compare: list[int], metric: str, lpips: torch.nn.Module | None = None
) -> ReconScore:
    """Agreement of `renders` with `frames` (uint8 `[F, H, W, 3]`) on the frame indices `compare`
    (the held-out ones when the scene was built from the others)."""
    if renders.shape != frames.shape:
        raise ValueError(f"renders {list(renders.shape)} and frames {list(frames.shape)} differ in shape")
    if not compare:
        raise ValueError("no frame to compare")
    a, b = to_tensor(renders[compare]), to_tensor(frames[compare])
    p, s = float(psnr(a, b).mean()), float(ssim(a, b).mean())
    lp = float(lpips(a * 2 - 1, b * 2 - 1).mean()) if lpips is not None else None
    if metric == "lpips":
        if lp is None:
            raise ValueError("metric lpips without an LPIPS model")
        value = 1.0 - lp
    else:
        value = s
    return ReconScore(float(np.clip(value, 0.0, 1.0)), p, s, lp, list(compare))


def s_recon_columns(v: TermInput) -> dict[str, object]:
    """s_recon and its metrics on the frames that did not build the scene (on all of them when every one did)."""
    used = set(v.recon.gaussian_frames)
    compare = [i for i in range(len(v.video)) if i not in used] or list(range(len(v.video)))
    rec = s_recon(v.recon.inputs, v.video, compare, v.params.reward.recon_metric, v.lpips)
    return {"s_recon": rec.s_recon, "psnr": rec.psnr, "ssim": rec.ssim, "lpips": rec.lpips}


def motion(frames: np.ndarray) -> float:
    """How much the video moves: mean absolute change between consecutive frames, in [0, 1]."""
    if len(frames) < 2:
        return 0.0
    f = frames.astype(np.float32) / 255.0
    return float(np.abs(np.diff(f, axis=0)).mean())


def motion_factor(amount: float, floor: float, wants_motion: bool) -> float:
    """The share of the 3D terms a video keeps: all of it above the motion floor (or when the prompt
    asks for a fixed camera), proportionally less below it, so a frozen video cannot win them."""
    if not wants_motion or floor <= 0:
        return 1.0
    return float(min(1.0, max(amount, 0.0) / floor)) if math.isfinite(amount) else 0.0
