"""`recon.ssim` pinned to scikit-image's SSIM, the reference implementation of Wang et al. (2004).

Our ssim takes `[F, 3, H, W]` images in [0, 1] (what `to_tensor` makes of uint8 frames) and, per
frame, averages the SSIM map over the 3 channels and the *valid* positions of an 11x11 Gaussian
window (sigma 1.5), with population (co)variances and C1 = 0.01^2, C2 = 0.03^2. skimage's
`structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)` is the same estimator: it filters with a kernel of radius
int(truncate * sigma + 0.5) = 5 (11 taps) and then crops (win_size - 1) // 2 = 5 pixels from every
border before the mean, which leaves exactly our valid region, so its reflect padding never reaches
the mean. The per-channel means it averages weigh the channels equally, as ours does. Frames smaller
than 11 pixels shrink our window to an odd `size` with sigma 1.5 * size / 11; skimage matches that
with the same sigma and truncate = radius / sigma.

Tolerances (measured on these images: the estimator is the same, what is left is float rounding):
- float64 inputs agree to <= 8e-6. The residue is our window, built and normalised in float32: its
  weights sum to 1 only within ~1e-7 (-6.8e-8 for 11 taps, +1.7e-7 for 7), which shifts
  E[x^2] - mu^2 by ~1e-7 * mu^2, divided by sigma_a^2 + sigma_b^2 + C2 >= 9e-4. Pinned at 5e-5.
- float32 inputs (production: `to_tensor`) agree to <= 1.2e-4. E[x^2] - mu^2 cancels in float32
  (eps 6e-8 times mu^2 ~ 0.7), worst on bright, nearly flat patches whose variance is ~C2. Pinned
  at 5e-4.
Real slips move some case by more (the largest move over the cases): sample covariance 2.1e-3,
sigma 14/15 of ours 2.1e-2, K2 0.025 4.6e-2, a 7x7 box window 9.1e-2, the reflect-padded full map
instead of the valid region 1.3e-1; K1 0.02 by 3.6e-4, which only the float64 cases catch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from worldr1.rewards.recon import ssim, to_tensor

ATOL = {torch.float64: 5e-5, torch.float32: 5e-4}


def image_pairs(h: int, w: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """uint8 RGB `[H, W, 3]` pairs, as the frames s_recon compares."""
    rng = np.random.default_rng(h * 1000 + w)
    y, x = np.mgrid[0:h, 0:w]
    grad = np.stack([x / (w - 1), y / (h - 1), (x + y) / (h + w - 2)], -1) * 255
    texture = np.clip(gaussian_filter(rng.normal(128, 60, (h, w, 3)), (1, 1, 0)), 0, 255)
    bright = grad * 0.1 + 200  # mu^2 >> variance: the float32 worst case
    dark = grad * 0.05 + 3  # mu^2 ~ C1: where C1 shows

    def u8(a: np.ndarray) -> np.ndarray:
        return np.clip(a, 0, 255).round().astype(np.uint8)

    return {
        "gradient vs noisy copy": (u8(grad), u8(grad + rng.normal(0, 12, grad.shape))),
        "two random images": (
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        ),
        "texture vs blurred copy": (u8(texture), u8(gaussian_filter(texture, (2, 2, 0)))),
        "bright near-flat vs +-1 noise": (u8(bright), u8(bright + rng.normal(0, 1, grad.shape))),
        "dark gradient vs noisy copy": (u8(dark), u8(dark + rng.normal(0, 3, grad.shape))),
    }


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    size = min(11, a.shape[0], a.shape[1])  # our window for this frame size (odd here)
    sigma = 1.5 * size / 11
    return float(
        structural_similarity(
            a / 255.0,
            b / 255.0,
            gaussian_weights=True,
            sigma=sigma,
            truncate=(size - 1) / 2 / sigma,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=1.0,
        )
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("h", "w"), [(32, 32), (48, 64), (7, 10)])
def test_ssim_matches_skimage(h: int, w: int, dtype: torch.dtype) -> None:
    pairs = image_pairs(h, w)
    a = np.stack([p[0] for p in pairs.values()])
    b = np.stack([p[1] for p in pairs.values()])
    if dtype == torch.float32:
        ours = ssim(to_tensor(a), to_tensor(b))
    else:  # the same values skimage gets, so only our float32 window stays float32
        ours = ssim(*(torch.from_numpy(x / 255.0).permute(0, 3, 1, 2) for x in (a, b)))
    assert ours.dtype == dtype and ours.shape == (len(pairs),)
    ref = [skimage_ssim(x, y) for x, y in pairs.values()]
    diffs = {name: abs(float(o) - r) for name, o, r in zip(pairs, ours, ref)}
    assert max(diffs.values()) <= ATOL[dtype], {k: f"{v:.1e}" for k, v in diffs.items()}
    # The cases span the range, so a constant offset or a squashed scale cannot hide in them.
    assert min(ref) < 0.1 and max(ref) > 0.9
