"""Filming a toy scene: the prompt's camera path placed around the scene, rendered with true depth.

The target path (`worldr1.prompts.trajectory.target_path`) starts at the identity; here its first
camera is put at a fixed distance and height looking at the scene's centre, and the motion sizes
are World-R1's segments rescaled to that distance (push and move 0.3 of it, orbit about the centre
itself), so every move keeps the objects in a sensible part of the frame. Colours go through the
project's rasteriser (pure torch by default: byte-identical on every machine); depth is the exact
depth of the analytic surfaces (`raycast.true_depth`), which the rasterised depth is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras, intrinsics_from_fov, look_at
from worldr1.geometry.gaussians import Gaussians, unproject_depth
from worldr1.geometry.raster import Backend, render
from worldr1.prompts.camera import Primitive
from worldr1.prompts.trajectory import MotionScale, target_path
from worldr1.toyworld.raycast import true_depth
from worldr1.toyworld.scene import DEFAULT_DENSITY, ToyScene, scene_gaussians

FOV_X_DEG = 55.0
# The first camera: this many scene radii from the centre, looking down at PITCH_DEG.
DISTANCE_RADII = 2.9
PITCH_DEG = 25.0
# Fractions of the camera's distance for push/pull and move (World-R1's 220/600 is ~0.37: a bit
# less here, so a push followed by a move still keeps the centre in view); pan and orbit angles
# as World-R1's.
PUSH_FRACTION, MOVE_FRACTION = 0.3, 0.3
PAN_DEG, ORBIT_DEG = 14.0, 24.0
WORLD_UP = np.array([0.0, 0.0, 1.0])
# The torch rasteriser composites every Gaussian of a tile against all its pixels; the toy
# world's Gaussians are a pixel or two wide, so 8-pixel tiles waste less (the same bytes as 16,
# 1.5x faster at 64x64).
TILE = 8


@dataclass(frozen=True)
class ToyVideo:
    """Frames `uint8 [F, H, W, 3]`, true depth and the rasteriser's coverage `float32 [F, H, W]`,
    cameras (float64): `w2c [F, 4, 4]` OpenCV world-to-camera, `K [F, 3, 3]` in pixels of the frames."""

    frames: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    w2c: np.ndarray
    K: np.ndarray

    @property
    def cameras(self) -> Cameras:
        return Cameras(self.w2c, self.K, self.frames.shape[1], self.frames.shape[2])


def camera_distance(scene: ToyScene) -> float:
    return DISTANCE_RADII * scene.radius


def toy_motion_scale(scene: ToyScene) -> MotionScale:
    """World-R1's segment sizes scaled to the scene: an orbit circles the scene's centre."""
    d = camera_distance(scene)
    return MotionScale(push=PUSH_FRACTION * d, move=MOVE_FRACTION * d, pan_deg=PAN_DEG, orbit_deg=ORBIT_DEG,
                       orbit_radius=d)


def first_camera(scene: ToyScene) -> np.ndarray:
    """World-to-camera of frame 0: in front of the scene (at -y), above it, looking at its centre."""
    pitch = math.radians(PITCH_DEG)
    offset = camera_distance(scene) * np.array([0.0, -math.cos(pitch), math.sin(pitch)])
    return look_at(scene.centre + offset, scene.centre, up=WORLD_UP)


def toy_cameras(primitives: Sequence[Primitive], frames: int, scene: ToyScene, height: int, width: int,
                fov_x_deg: float = FOV_X_DEG) -> Cameras:
    """The prompt's target path around `scene`: frame 0 is `first_camera`, then the moves in order."""
    # target_path is in the first camera's frame: composing with that camera's w2c puts it in the world.
    w2c = target_path(primitives, frames, toy_motion_scale(scene)) @ first_camera(scene)
    K = np.repeat(intrinsics_from_fov(height, width, fov_x_deg)[None], frames, 0)
    return Cameras(w2c, K, height, width)


def render_scenes(scenes: Sequence[ToyScene], cameras: Cameras, density: float = DEFAULT_DENSITY,
                  backend: Backend = "torch") -> ToyVideo:
    """Frame `f` shows `scenes[f]` from camera `f`.

    Frames render one at a time: a frame's bytes then depend on its scene and camera only, not on
    which other frames share the batch (batched matrix products round differently), so a clip
    and its corrupted twin agree exactly before the corruption starts.
    """
    if len(scenes) != len(cameras):
        raise ValueError(f"{len(scenes)} scenes for {len(cameras)} cameras")
    rgb, alpha = [], []
    built: dict[ToyScene, Gaussians] = {}  # the frames of one scene share its Gaussians
    for f, scene in enumerate(scenes):
        if scene not in built:
            built[scene] = scene_gaussians(scene, density)
        out = render(built[scene], torch.from_numpy(cameras.w2c[f:f + 1]).float(),
                     torch.from_numpy(cameras.K[f:f + 1]).float(), cameras.width, cameras.height, backend, TILE)
        rgb.append(out.rgb.cpu())
        alpha.append(out.alpha.cpu())
    depth = np.concatenate([true_depth(s, cameras.w2c[f:f + 1], cameras.K[f:f + 1], cameras.height, cameras.width)
                            for f, s in enumerate(scenes)])
    frames = (torch.cat(rgb).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return ToyVideo(frames, depth.astype(np.float32), torch.cat(alpha).numpy(), cameras.w2c.copy(), cameras.K.copy())


def render_video(scene: ToyScene, cameras: Cameras, density: float = DEFAULT_DENSITY,
                 backend: Backend = "torch") -> ToyVideo:
    """A static scene filmed along `cameras` (the video size is the cameras')."""
    return render_scenes([scene] * len(cameras), cameras, density, backend)


@dataclass(frozen=True)
class Reprojection:
    """Frame i's pixels moved into frame j by i's true depth and both cameras.

    `colour_error`: mean |rgb_i - rgb_j| (in [0, 1]) over pixels both frames see; `see_through`:
    the share of pixels landing where frame j sees *behind* them (the surface is gone: it moved,
    shrank or was swapped); `inconsistent`: see-through, or a channel off by more than the
    tolerance (one channel, not the mean: red to orange moves the green channel alone).
    Shares are of the pixels that land inside frame j and are not hidden there by something in front.
    """

    colour_error: float
    see_through: float
    inconsistent: float
    pixels: int


def layer_edges(depth: torch.Tensor, rel: float = 0.02) -> torch.Tensor:
    """Pixels of `depth [F, H, W]` next to a jump between depth layers (both sides of a silhouette).

    On a plane, inverse depth is affine in pixel coordinates, so its second difference along a
    row, a column or a diagonal is zero however steep the plane: a long oblique floor is no edge
    (`geometry.gaussians.depth_edges` would flag most of it at low resolution), while a
    silhouette's jump makes it large on the pixels on either side.
    """
    inv = torch.nn.functional.pad((1 / depth.clamp_min(1e-6))[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    mid = inv[:, 1:-1, 1:-1]
    bent = torch.zeros_like(mid)
    for (y0, x0), (y1, x1) in [((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 0), (2, 2)), ((0, 2), (2, 0))]:
        a = inv[:, y0:y0 + mid.shape[1], x0:x0 + mid.shape[2]]
        b = inv[:, y1:y1 + mid.shape[1], x1:x1 + mid.shape[2]]
        bent = torch.maximum(bent, (a + b - 2 * mid).abs())
    return bent > rel * mid


def sample(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str) -> torch.Tensor:
    """`image [H, W, C]` at pixel coordinates (u, v) (pixel centres at +0.5) -> `[..., C]`."""
    h, w = image.shape[:2]
    grid = torch.stack([2 * u / w - 1, 2 * v / h - 1], -1)[None]
    out = torch.nn.functional.grid_sample(image.permute(2, 0, 1)[None], grid, mode=mode, align_corners=False)
    return out[0].permute(1, 2, 0)


def reprojection_check(video: ToyVideo, i: int, j: int, depth_tol: float = 0.02,
                       colour_tol: float = 0.2) -> Reprojection:
    """How well frame i's true depth explains frame j (see `Reprojection`); float64 throughout.

    Pixels at silhouettes are left out on both sides: their colour blends two surfaces (the discs
    reach about a pixel past an edge) and a bilinear sample of j's depth there mixes two layers.
    `depth_tol` (relative) absorbs the bilinear sampling of depth, which is exact on no surface
    (inverse depth, not depth, is affine across a plane's pixels).
    """
    rgb = torch.from_numpy(video.frames).double() / 255
    depth = torch.from_numpy(video.depth).double()
    alpha = torch.from_numpy(video.alpha).double()
    edges = layer_edges(depth)
    w2c, K = torch.from_numpy(video.w2c), torch.from_numpy(video.K)
    points = unproject_depth(depth[i], K[i], w2c[i])
    cam = points @ w2c[j, :3, :3].T + w2c[j, :3, 3]
    z = cam[..., 2]
    safe_z = z.clamp_min(1e-6)
    u = K[j, 0, 0] * cam[..., 0] / safe_z + K[j, 0, 2]
    v = K[j, 1, 1] * cam[..., 1] / safe_z + K[j, 1, 2]
    h, w = depth.shape[1:]
    inside = (z > 1e-6) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    d_j = sample(depth[j][..., None], u, v, "bilinear")[..., 0]
    rgb_j = sample(rgb[j], u, v, "bilinear")
    # Bilinear samples reach one pixel around: none of those four may be a silhouette pixel.
    clean_j = (sample(edges[j][..., None].double(), u, v, "bilinear")[..., 0] == 0) & \
              (sample(alpha[j][..., None], u, v, "nearest")[..., 0] > 0.99)
    valid = inside & clean_j & (alpha[i] > 0.99) & ~edges[i]
    hidden = z > d_j * (1 + depth_tol)
    through = valid & ~hidden & (z < d_j * (1 - depth_tol))
    both = valid & ~hidden & ~through
    diff = (rgb[i] - rgb_j).abs()
    err = diff.mean(-1)
    judged = int((valid & ~hidden).sum())
    bad = through | (both & (diff.amax(-1) > colour_tol))
    return Reprojection(colour_error=float(err[both].mean()) if bool(both.any()) else 0.0,
                        see_through=float(through.sum()) / max(judged, 1),
                        inconsistent=float(bad.sum()) / max(judged, 1), pixels=judged)


def pair_check(video: ToyVideo, i: int, j: int) -> Reprojection:
    """`reprojection_check` both ways, the worse of each number: a change shows in one direction at
    least (an object that jumps in front of where it stood hides its old place from i -> j, and
    shows up as see-through only from j -> i)."""
    a, b = reprojection_check(video, i, j), reprojection_check(video, j, i)
    return Reprojection(max(a.colour_error, b.colour_error), max(a.see_through, b.see_through),
                        max(a.inconsistent, b.inconsistent), min(a.pixels, b.pixels))
