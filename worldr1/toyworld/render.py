"""Filming a toy scene: the prompt's camera path placed around the scene, rendered with true depth.

The target path (`worldr1.prompts.camera_path.target_path`) starts at the identity; here its first
camera is put at a fixed distance and height looking at the scene's centre, and the motion sizes
are World-R1's segments rescaled to that distance (push and move 0.3 of it, an orbit radius of
the distance itself, so the arc keeps the centre in view), so every move keeps the objects in a sensible part of the frame. Frames and depth are
ray cast exactly (`raycast.raycast_render`, float64 numpy: the same bytes on every machine), so a
static scene is one 3D-consistent scene to the pixel footprint, which splatted discs are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras, intrinsics_from_fov, look_at
from worldr1.geometry.gaussians import unproject_depth
from worldr1.geometry.warp import layer_edges, sample
from worldr1.prompts.camera import Primitive
from worldr1.prompts.camera_path import MotionScale, target_path
from worldr1.toyworld.raycast import raycast_render
from worldr1.toyworld.scene import ToyScene

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
#: sub-pixel rays per side of a pixel (anti-aliasing): 3 takes the checker's edges to within 1% of 6
SUPERSAMPLE = 3


@dataclass(frozen=True)
class ToyVideo:
    """Frames `uint8 [F, H, W, 3]`, true depth and coverage `float32 [F, H, W]` (1: the world is closed),
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
    """World-R1's segment sizes scaled to the scene: the orbit's radius is the distance to the centre, which
    World-R1's arc then keeps near the middle of the frame (to first order it circles a point that far ahead)."""
    d = camera_distance(scene)
    return MotionScale(
        push=PUSH_FRACTION * d, move=MOVE_FRACTION * d, pan_deg=PAN_DEG, orbit_deg=ORBIT_DEG, orbit_radius=d
    )


def first_camera(scene: ToyScene) -> np.ndarray:
    """World-to-camera of frame 0: in front of the scene (at -y), above it, looking at its centre."""
    pitch = math.radians(PITCH_DEG)
    offset = camera_distance(scene) * np.array([0.0, -math.cos(pitch), math.sin(pitch)])
    return look_at(scene.centre + offset, scene.centre, up=WORLD_UP)


def toy_cameras(
    primitives: Sequence[Primitive], frames: int, scene: ToyScene, height: int, width: int, fov_x_deg: float = FOV_X_DEG
) -> Cameras:
    """The prompt's target path around `scene`: frame 0 is `first_camera`, then the moves in order."""
    # target_path is in the first camera's frame: composing with that camera's w2c puts it in the world.
    w2c = target_path(primitives, frames, toy_motion_scale(scene)) @ first_camera(scene)
    K = np.repeat(intrinsics_from_fov(height, width, fov_x_deg)[None], frames, 0)
    return Cameras(w2c, K, height, width)


def render_scenes(scenes: Sequence[ToyScene], cameras: Cameras, supersample: int = SUPERSAMPLE) -> ToyVideo:
    """Frame `f` shows `scenes[f]` from camera `f`, ray cast with `supersample`^2 rays a pixel.

    Frames render one at a time: a frame's bytes then depend on its scene and camera only, so a
    clip and its corrupted twin agree exactly before the corruption starts.
    """
    if len(scenes) != len(cameras):
        raise ValueError(f"{len(scenes)} scenes for {len(cameras)} cameras")
    rgb, depth = zip(
        *(
            raycast_render(s, cameras.w2c[f : f + 1], cameras.K[f : f + 1], cameras.height, cameras.width, supersample)
            for f, s in enumerate(scenes)
        )
    )
    frames = np.round(np.clip(np.concatenate(rgb), 0.0, 1.0) * 255).astype(np.uint8)
    # The dome and the floor close the world: every pixel is covered.
    alpha = np.ones(frames.shape[:3], dtype=np.float32)
    return ToyVideo(frames, np.concatenate(depth).astype(np.float32), alpha, cameras.w2c.copy(), cameras.K.copy())


def render_video(scene: ToyScene, cameras: Cameras, supersample: int = SUPERSAMPLE) -> ToyVideo:
    """A static scene filmed along `cameras` (the video size is the cameras')."""
    return render_scenes([scene] * len(cameras), cameras, supersample)


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


def reprojection_check(
    video: ToyVideo, i: int, j: int, depth_tol: float = 0.02, colour_tol: float = 0.2
) -> Reprojection:
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
    clean_j = (sample(edges[j][..., None].double(), u, v, "bilinear")[..., 0] == 0) & (
        sample(alpha[j][..., None], u, v, "nearest")[..., 0] > 0.99
    )
    valid = inside & clean_j & (alpha[i] > 0.99) & ~edges[i]
    hidden = z > d_j * (1 + depth_tol)
    through = valid & ~hidden & (z < d_j * (1 - depth_tol))
    both = valid & ~hidden & ~through
    diff = (rgb[i] - rgb_j).abs()
    err = diff.mean(-1)
    judged = int((valid & ~hidden).sum())
    bad = through | (both & (diff.amax(-1) > colour_tol))
    return Reprojection(
        colour_error=float(err[both].mean()) if bool(both.any()) else 0.0,
        see_through=float(through.sum()) / max(judged, 1),
        inconsistent=float(bad.sum()) / max(judged, 1),
        pixels=judged,
    )


def pair_check(video: ToyVideo, i: int, j: int) -> Reprojection:
    """`reprojection_check` both ways, the worse of each number: a change shows in one direction at
    least (an object that jumps in front of where it stood hides its old place from i -> j, and
    shows up as see-through only from j -> i)."""
    a, b = reprojection_check(video, i, j), reprojection_check(video, j, i)
    return Reprojection(
        max(a.colour_error, b.colour_error),
        max(a.see_through, b.see_through),
        max(a.inconsistent, b.inconsistent),
        min(a.pixels, b.pixels),
    )
