"""Exact depth of a toy scene: every pixel's ray cast against the analytic surfaces (float64).

The rasteriser's depth is the alpha-weighted depth of the discs' centres, and on a surface seen at
an angle the discs in front of a pixel's own point weigh most: on the floor it reads 4-7% short of
the true distance. The scene is made of planes, spheres, boxes, cylinders and cones, so the true
depth is cheap to compute exactly instead; the discs are centred on these same surfaces, so it
matches the rendered colours up to the discs' blur at silhouettes (about a pixel at 64x64).
Depth is along the optical axis (z in the camera frame), as everywhere in the project.
"""

from __future__ import annotations

import math

import numpy as np

from worldr1.geometry.cameras import invert
from worldr1.toyworld.scene import DOME_RADIUS, Shape, ToyObject, ToyScene

NO_HIT = np.inf


def pixel_rays(w2c: np.ndarray, K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Origins `[3]` and world directions `[H, W, 3]` of one camera's pixel centres, scaled so that
    the ray parameter is the camera-frame depth (each direction has z = 1 in the camera)."""
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    c2w = invert(w2c)
    return c2w[:3, 3], cam @ c2w[:3, :3].T


def nearest(t: np.ndarray, ok: np.ndarray, best: np.ndarray) -> np.ndarray:
    return np.where(ok & (t > 1e-9) & (t < best), t, best)


def quadratic_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both roots of a t^2 + b t + c = 0 (smaller first) and where they are real."""
    disc = b * b - 4 * a * c
    real = (disc >= 0) & (np.abs(a) > 1e-12)
    root = np.sqrt(np.where(real, disc, 0.0))
    safe_a = np.where(real, a, 1.0)
    t0, t1 = (-b - root) / (2 * safe_a), (-b + root) / (2 * safe_a)
    return np.minimum(t0, t1), np.maximum(t0, t1), real


def hit_world(o: np.ndarray, d: np.ndarray, best: np.ndarray) -> np.ndarray:
    """The floor (z = 0) and the dome around it, seen from inside."""
    t_floor = -o[2] / np.where(d[..., 2] < 0, d[..., 2], -1.0)
    best = nearest(t_floor, d[..., 2] < 0, best)
    _, far, real = quadratic_roots((d * d).sum(-1), 2 * d @ o, float(o @ o) - DOME_RADIUS**2)
    return nearest(far, real, best)


def hit_sphere(o: np.ndarray, d: np.ndarray, obj: ToyObject, best: np.ndarray) -> np.ndarray:
    rel = o - obj.centre
    near, _, real = quadratic_roots((d * d).sum(-1), 2 * d @ rel, float(rel @ rel) - (obj.size / 2) ** 2)
    return nearest(near, real, best)


def hit_box(o: np.ndarray, d: np.ndarray, obj: ToyObject, best: np.ndarray) -> np.ndarray:
    """Slab test in the cube's own frame (turned by its yaw about its vertical axis)."""
    c, s = math.cos(math.radians(obj.yaw_deg)), math.sin(math.radians(obj.yaw_deg))
    to_local = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    lo_, ld = to_local @ (o - obj.centre), d @ to_local.T
    half = obj.size / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t_a, t_b = (-half - lo_) / ld, (half - lo_) / ld
    t_enter = np.nanmax(np.minimum(t_a, t_b), axis=-1)
    t_exit = np.nanmin(np.maximum(t_a, t_b), axis=-1)
    return nearest(t_enter, t_enter <= t_exit, best)


def hit_cylinder(o: np.ndarray, d: np.ndarray, obj: ToyObject, best: np.ndarray) -> np.ndarray:
    r, h = obj.size / 2, obj.height
    ox, oy = o[0] - obj.position[0], o[1] - obj.position[1]
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    near, _, real = quadratic_roots(a, 2 * (ox * d[..., 0] + oy * d[..., 1]), ox * ox + oy * oy - r * r)
    z = o[2] + near * d[..., 2]
    best = nearest(near, real & (z >= 0) & (z <= h), best)
    t_top = (h - o[2]) / np.where(np.abs(d[..., 2]) > 1e-12, d[..., 2], 1e-12)
    x, y = ox + t_top * d[..., 0], oy + t_top * d[..., 1]
    return nearest(t_top, x * x + y * y <= r * r, best)


def hit_cone(o: np.ndarray, d: np.ndarray, obj: ToyObject, best: np.ndarray) -> np.ndarray:
    """x^2 + y^2 = (k (h - z))^2 with k = r / h, for 0 <= z <= h (its base lies on the floor)."""
    r, h = obj.size / 2, obj.height
    k2 = (r / h) ** 2
    ox, oy, w = o[0] - obj.position[0], o[1] - obj.position[1], h - o[2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = dx * dx + dy * dy - k2 * dz * dz
    b = 2 * (ox * dx + oy * dy + k2 * w * dz)
    t0, t1, real = quadratic_roots(a, b, ox * ox + oy * oy - k2 * w * w)
    for t in (t1, t0):  # t0 last: where both roots hit the cone, the nearer one wins
        z = o[2] + t * d[..., 2]
        best = nearest(t, real & (z >= 0) & (z <= h), best)
    return best


HITS = {Shape.SPHERE: hit_sphere, Shape.CUBE: hit_box, Shape.CYLINDER: hit_cylinder, Shape.CONE: hit_cone}


def true_depth(scene: ToyScene, w2c: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Camera-frame depth `[F, H, W]` (float64) of the first surface along each pixel's ray."""
    out = np.empty((len(w2c), height, width))
    for f in range(len(w2c)):
        o, d = pixel_rays(w2c[f], K[f], height, width)
        best = hit_world(o, d, np.full((height, width), NO_HIT))
        for obj in scene.objects:
            best = HITS[obj.shape](o, d, obj, best)
        out[f] = best
    return out
