"""From a reconstruction to renders: Gaussians, checks, and the views the score stage looks at."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras
from worldr1.geometry.gaussians import Gaussians, depth_edges, pixel_gaussians
from worldr1.geometry.paths import dolly_zoom_path, meta_view, wander_path
from worldr1.geometry.raster import Backend, render
from worldr1.geometry.sim3 import Sim3, align_passes
from worldr1.reconstruct.base import Reconstruction

# A frame this dark on average (in [0, 1]) carries nothing to reconstruct.
BLACK_LEVEL = 2.0 / 255.0


class ReconstructionFailed(Exception):
    """A sample the 3D reward must not score: the reason goes into recon.parquet."""


def check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ReconstructionFailed(f"frames must be [F, H, W, 3], got {list(frames.shape)}")
    if frames.shape[0] < 2:
        raise ReconstructionFailed(f"{frames.shape[0]} frame(s): a reconstruction needs at least 2")
    if frames.mean() / 255.0 < BLACK_LEVEL:
        raise ReconstructionFailed("the frames are (nearly) all black")


def check_cameras(cams: Cameras) -> None:
    if not (np.isfinite(cams.w2c).all() and np.isfinite(cams.K).all()):
        raise ReconstructionFailed("non-finite cameras")
    r = cams.w2c[:, :3, :3]
    if np.abs(r @ np.swapaxes(r, 1, 2) - np.eye(3)).max() > 1e-3 or np.abs(np.linalg.det(r) - 1).max() > 1e-3:
        raise ReconstructionFailed("camera rotations are not rotations")
    if (cams.K[:, 0, 0] <= 0).any() or (cams.K[:, 1, 1] <= 0).any():
        raise ReconstructionFailed("non-positive focal lengths")
    rel = cams.w2c @ np.linalg.inv(cams.w2c[0])
    if np.abs(rel - np.eye(4)).max() < 1e-6:
        raise ReconstructionFailed("all cameras are identical: no parallax to reconstruct from")


@dataclass(frozen=True)
class SceneGaussians:
    """The scene the renders are taken from, built from `frames_used` only. `to_scene` maps the
    reconstruction's world into the Gaussians' own when they come from a pass of their own."""

    gaussians: Gaussians
    frames_used: list[int]
    confident_fraction: float
    to_scene: Sim3 | None = None

    def cameras(self, cams: Cameras) -> Cameras:
        """The reconstruction's cameras placed in the Gaussians' world."""
        return (
            cams
            if self.to_scene is None
            else Cameras(self.to_scene.apply_to_w2c(cams.w2c), cams.K, cams.height, cams.width)
        )

    def depth(self, depth: float) -> float:
        """A depth of the reconstruction's world in the Gaussians' units."""
        return depth if self.to_scene is None else depth * self.to_scene.scale


def held_out_frames(frames: int) -> list[int]:
    """The frames the held-out scene is built from (the even ones); the odd ones are its held-out views."""
    return list(range(0, frames, 2))


def needs_own_pass(recon: Reconstruction, holdout: bool) -> bool:
    """A model's own Gaussians come from every frame it was given: a held-out scene needs a pass on
    the even frames alone (`reconstruction_gaussians`'s `even`)."""
    return holdout and recon.gaussians is not None


def reconstruction_gaussians(
    recon: Reconstruction,
    holdout: bool,
    conf_percentile: float,
    max_gaussians: int,
    edge_rel: float,
    even: Reconstruction | None = None,
) -> SceneGaussians:
    """The model's own Gaussians, or pixel-aligned ones from the confident depth of the used frames.

    With `holdout`, only even frames build the scene, so renders at odd cameras are held-out views.
    A model that predicts Gaussians saw every frame in `recon`, so then they are taken from `even`,
    the model's pass on the even frames alone, and that pass's world is aligned to `recon`'s
    (`align_passes`): the odd cameras come from the pass on all frames, which the scene never saw.
    """
    n = recon.depth.shape[0]
    used = held_out_frames(n) if holdout else list(range(n))
    depth, conf = recon.depth, recon.conf
    finite = torch.isfinite(depth) & (depth > 0) & torch.isfinite(conf)
    if not bool(finite.any()):
        raise ReconstructionFailed("no valid depth")
    threshold = torch.quantile(conf[finite].float(), conf_percentile / 100.0) if conf_percentile > 0 else -math.inf
    confident = finite & (conf >= threshold)
    if edge_rel > 0:
        confident &= ~depth_edges(torch.where(finite, depth, torch.zeros_like(depth)), edge_rel)
    fraction = float(confident.float().mean())
    if recon.gaussians is not None:
        if not holdout:
            return SceneGaussians(recon.gaussians, used, fraction)
        # Caller errors, not a sample's: TypeError escapes reconstruct_frames' per-sample catch.
        if even is None or even.gaussians is None:
            raise TypeError("a held-out scene from a model's own Gaussians needs the model's pass on the even frames")
        if len(even.extrinsics) != len(used):
            raise TypeError(f"the even frames' pass has {len(even.extrinsics)} cameras, expected {len(used)}")
        try:
            to_even = align_passes(
                recon.extrinsics[used], recon.depth[used].double().numpy(), even.extrinsics, even.depth.double().numpy()
            )
        except ValueError as exc:
            raise ReconstructionFailed(str(exc)) from None
        return SceneGaussians(even.gaussians, used, fraction, to_even)
    h, w = recon.process_hw
    K = torch.from_numpy(recon.cameras.resized(h, w).K).float()
    mask = confident[used]
    # Thin the pixel grid until the scene fits the Gaussian budget; bigger footprints keep it closed.
    stride = max(1, math.ceil(math.sqrt(float(mask.sum()) / max_gaussians)))
    grid = torch.zeros_like(mask)
    grid[:, ::stride, ::stride] = True
    images = torch.from_numpy(recon.images[used]).float() / 255.0
    try:
        g = pixel_gaussians(
            images,
            depth[used].float(),
            mask & grid,
            K[used],
            torch.from_numpy(recon.extrinsics[used]).float(),
            size=0.3 if stride == 1 else 0.5 * stride,
        )
    except ValueError as exc:
        raise ReconstructionFailed(str(exc)) from None
    return SceneGaussians(g, used, fraction)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@dataclass(frozen=True)
class Views:
    input: np.ndarray  # uint8 [F, H, W, 3], one per input camera
    path: np.ndarray  # uint8 [P, H, W, 3], the novel path
    meta: np.ndarray  # uint8 [H, W, 3]
    meta_index: int


@torch.no_grad()
def render_views(
    g: Gaussians, cams: Cameras, median_depth: float, backend: Backend, batch: int = 8, novel_path: bool = True
) -> Views:
    """Renders at the input cameras, along a wander then a dolly-zoom path around the middle
    camera, and at World-R1's meta view (the input camera farthest from the first). Without
    `novel_path` the path is empty: no reward term reads it, only people (the audit page), and it
    costs four of a toy video's nine renders."""

    def shoot(c: Cameras) -> np.ndarray:
        out = []
        for i in range(0, len(c), batch):
            w2c = torch.from_numpy(c.w2c[i : i + batch]).float()
            K = torch.from_numpy(c.K[i : i + batch]).float()
            out.append(to_uint8(render(g, w2c, K, c.width, c.height, backend).rgb))
        return np.concatenate(out)

    inputs = shoot(cams)
    meta = meta_view(cams)
    if not novel_path:
        return Views(inputs, inputs[:0], inputs[meta], meta)
    n = max(len(cams) // 2, 2)
    depth = median_depth if math.isfinite(median_depth) and median_depth > 0 else 1.0
    path_cams = [wander_path(cams, n, 0.08 * depth), dolly_zoom_path(cams, n, depth, 0.3 * depth)]
    return Views(inputs, np.concatenate([shoot(c) for c in path_cams]), inputs[meta], meta)
