"""Seeded procedural toy scenes: a few coloured objects on a checkered floor under a textured dome.

World frame: z up, the floor is the plane z = 0, the scene's objects stand within `radius` of the
origin. Every surface is a layer of small, flat, nearly opaque Gaussians (discs lying in the
surface), the way `worldr1.geometry.synthetic` builds its cards: each pixel then sees one surface
and its colour matches the surface's exact depth (`raycast.true_depth`), so frames reproject
cleanly into one another (soft blobs would leave floaters). The dome (a hemisphere on the floor's
rim) closes the world: whatever way a camera inside looks, every pixel is covered. Shading is
baked into the colours from a fixed light (Lambertian, so it does not depend on the view and a
static scene looks the same from every camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import torch

from worldr1.geometry.gaussians import Gaussians
from worldr1.ids import derive_seed

RGB = tuple[float, float, float]

# Object centres and footprints stay inside this radius, so the cameras of `render.toy_cameras`,
# placed from it, see them all at frame 0.
SCENE_RADIUS = 1.3
DOME_RADIUS = 9.0
# The checker is sampled finely up to FINE_FLOOR and fades to its mean colour between the two
# CHECKER radii, so the coarse far floor (and the dome) can use few, large Gaussians.
CHECKER_FADE = (2.4, 3.3)
# Where |sin(pi x / c) sin(pi y / c)| is under this, a checker cell ramps into its neighbour.
CHECKER_SOFTNESS = 0.35
FINE_FLOOR = 3.4
# Default Gaussians per unit length on objects; the floor near the objects gets 0.5 of it and the
# far floor and dome 0.13 (they are far from every camera, so a pixel covers more of them).
DEFAULT_DENSITY = 25.0
FLOOR_NEAR_RATIO, FAR_RATIO = 0.5, 0.13
# A flat Gaussian's std as a fraction of the sample spacing, and its opacity. Not fully opaque on
# purpose: the rasteriser (like gsplat's kernel) drops the Gaussian that would take a pixel's
# transmittance under 1e-4, so after a 0.9-alpha disc a 0.999 one is dropped whole and the pixel
# stays 10% see-through. At 0.9 the dropped remainder is under 1e-3, and with a std of one spacing
# the overlapping discs of a surface bring its transmittance to about 1e-3 everywhere on it.
DISC_STD = 1.0
DISC_OPACITY = 0.9
DISC_THICKNESS = 1e-3
LIGHT = np.array([-0.45, -0.6, 0.75]) / np.linalg.norm([-0.45, -0.6, 0.75])
AMBIENT = 0.45
# Smallest free floor between two objects' footprints.
OBJECT_GAP = 0.12


class Shape(StrEnum):
    CUBE = "cube"
    SPHERE = "sphere"
    CYLINDER = "cylinder"
    CONE = "cone"


# Height over width (the object's `size`) per shape.
HEIGHT_RATIO: dict[Shape, float] = {Shape.CUBE: 1.0, Shape.SPHERE: 1.0, Shape.CYLINDER: 1.2, Shape.CONE: 1.4}

# Saturated object colours: they stand out from every floor and sky below.
PALETTE: dict[str, RGB] = {
    "red": (0.85, 0.12, 0.1),
    "orange": (0.95, 0.5, 0.08),
    "yellow": (0.95, 0.85, 0.12),
    "green": (0.15, 0.68, 0.2),
    "blue": (0.12, 0.28, 0.88),
    "purple": (0.55, 0.2, 0.75),
    "pink": (0.97, 0.45, 0.7),
    "cyan": (0.1, 0.78, 0.85),
}
FLOORS: dict[str, tuple[RGB, RGB]] = {
    "grey and white": ((0.85, 0.85, 0.83), (0.48, 0.48, 0.5)),
    "beige and brown": ((0.86, 0.77, 0.6), (0.5, 0.36, 0.24)),
    "black and white": ((0.9, 0.9, 0.9), (0.12, 0.12, 0.12)),
    "sand and terracotta": ((0.9, 0.8, 0.62), (0.72, 0.38, 0.26)),
}
# (horizon, zenith) colours of the dome.
SKIES: dict[str, tuple[RGB, RGB]] = {
    "blue": ((0.8, 0.87, 0.95), (0.3, 0.5, 0.88)),
    "sunset": ((0.98, 0.7, 0.42), (0.42, 0.32, 0.6)),
    "grey": ((0.8, 0.8, 0.82), (0.5, 0.52, 0.58)),
    "green-tinted": ((0.78, 0.9, 0.78), (0.35, 0.6, 0.55)),
}


@dataclass(frozen=True)
class ToyObject:
    """One object standing on the floor at `position` (x, y); `size` is its width."""

    shape: Shape
    colour: str
    rgb: RGB
    position: tuple[float, float]
    size: float
    yaw_deg: float = 0.0

    @property
    def height(self) -> float:
        return self.size * HEIGHT_RATIO[self.shape]

    @property
    def footprint(self) -> float:
        """Radius of the circle on the floor that holds the object (a cube's half diagonal)."""
        return self.size * (math.sqrt(0.5) if self.shape is Shape.CUBE else 0.5)

    @property
    def centre(self) -> np.ndarray:
        """The middle of the object in the world (half its height above the floor)."""
        return np.array([self.position[0], self.position[1], 0.5 * self.height])


@dataclass(frozen=True)
class ToyScene:
    """Objects (ordered left to right as the first camera sees them), floor, sky, and the radius they fit in."""

    objects: tuple[ToyObject, ...]
    floor: str
    checker: float
    sky: str
    texture_seed: int
    radius: float = SCENE_RADIUS

    @property
    def centre(self) -> np.ndarray:
        """The point the first camera looks at: above the origin, at a typical object's mid-height."""
        return np.array([0.0, 0.0, 0.3])


def fits(obj: ToyObject, others: tuple[ToyObject, ...] | list[ToyObject], radius: float) -> bool:
    """`obj` stands inside `radius` and keeps OBJECT_GAP from every other object."""
    x, y = obj.position
    if math.hypot(x, y) + obj.footprint > radius:
        return False
    return all(
        math.hypot(x - o.position[0], y - o.position[1]) >= obj.footprint + o.footprint + OBJECT_GAP for o in others
    )


def free_position(
    rng: np.random.Generator, obj: ToyObject, others: list[ToyObject], radius: float, tries: int = 200
) -> tuple[float, float] | None:
    """A uniformly drawn floor position where `obj` fits beside `others`, or None after `tries` draws."""
    reach = radius - obj.footprint
    for _ in range(tries):
        r, a = reach * math.sqrt(float(rng.random())), 2 * math.pi * float(rng.random())
        pos = (r * math.cos(a), r * math.sin(a))
        if fits(replace(obj, position=pos), others, radius):
            return pos
    return None


def make_scene(seed: int) -> ToyScene:
    """1-3 objects of distinct colours on a floor, deterministically from `seed`."""
    rng = np.random.default_rng(derive_seed(seed, "toyworld", "scene"))
    count = int(rng.choice([1, 2, 3], p=[0.25, 0.4, 0.35]))
    colours = rng.choice(list(PALETTE), size=count, replace=False)
    placed: list[ToyObject] = []
    for colour in colours:
        shape = Shape(rng.choice(list(Shape)))
        obj = ToyObject(
            shape,
            str(colour),
            PALETTE[str(colour)],
            (0.0, 0.0),
            float(rng.uniform(0.5, 0.9)),
            float(rng.uniform(0.0, 90.0)) if shape is Shape.CUBE else 0.0,
        )
        pos = free_position(rng, obj, placed, SCENE_RADIUS)
        if pos is None:  # the floor is full: fewer objects rather than overlapping ones
            break
        placed.append(replace(obj, position=pos))
    return ToyScene(
        objects=tuple(sorted(placed, key=lambda o: o.position[0])),
        floor=str(rng.choice(list(FLOORS))),
        checker=float(rng.uniform(0.45, 0.8)),
        sky=str(rng.choice(list(SKIES))),
        texture_seed=int(rng.integers(2**31)),
    )


# --- surfaces: points, outward normals and the spacing between samples (float64) ---

Surface = tuple[np.ndarray, np.ndarray, float]


def lattice(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A Fibonacci lattice of `n` points in the unit square: even coverage with no grid seams."""
    i = np.arange(n)
    return (i + 0.5) / n, np.mod(i * (math.sqrt(5) - 1) / 2, 1.0)


def count_for(area: float, density: float) -> int:
    return max(4, math.ceil(area * density**2))


def cube_surface(obj: ToyObject, density: float) -> Surface:
    """The five visible faces (the bottom one lies on the floor) as square grids."""
    n = max(2, math.ceil(obj.size * density))
    t = ((np.arange(n) + 0.5) / n - 0.5) * obj.size
    a, b = (m.ravel() for m in np.meshgrid(t, t, indexing="ij"))
    h = obj.size / 2
    faces = []
    for axis, sign in [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1)]:
        p = np.zeros((a.size, 3))
        others = [k for k in range(3) if k != axis]
        p[:, others[0]], p[:, others[1]], p[:, axis] = a, b, sign * h
        nrm = np.zeros_like(p)
        nrm[:, axis] = sign
        faces.append((p, nrm))
    pts, nrm = (np.concatenate(x) for x in zip(*faces))
    c, s = math.cos(math.radians(obj.yaw_deg)), math.sin(math.radians(obj.yaw_deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return pts @ rot.T + obj.centre, nrm @ rot.T, obj.size / n


def sphere_surface(obj: ToyObject, density: float) -> Surface:
    r = obj.size / 2
    n = count_for(4 * math.pi * r * r, density)
    a, b = lattice(n)
    z = 1 - 2 * a
    ring = np.sqrt(1 - z * z)
    nrm = np.stack([ring * np.cos(2 * math.pi * b), ring * np.sin(2 * math.pi * b), z], 1)
    return obj.centre + r * nrm, nrm, math.sqrt(4 * math.pi * r * r / n)


def disc_points(radius: float, n: int) -> np.ndarray:
    """`n` evenly spread points `[N, 2]` on a disc (a sunflower pattern)."""
    a, b = lattice(n)
    r = radius * np.sqrt(a)
    return np.stack([r * np.cos(2 * math.pi * b), r * np.sin(2 * math.pi * b)], 1)


def cylinder_surface(obj: ToyObject, density: float) -> Surface:
    r, h = obj.size / 2, obj.height
    n_side, n_top = count_for(2 * math.pi * r * h, density), count_for(math.pi * r * r, density)
    a, b = lattice(n_side)
    ang = 2 * math.pi * b
    side_n = np.stack([np.cos(ang), np.sin(ang), np.zeros(n_side)], 1)
    side = np.stack([r * np.cos(ang), r * np.sin(ang), a * h], 1)
    top = np.concatenate([disc_points(r, n_top), np.full((n_top, 1), h)], 1)
    top_n = np.tile([0.0, 0.0, 1.0], (n_top, 1))
    base = np.array([obj.position[0], obj.position[1], 0.0])
    return (
        np.concatenate([side, top]) + base,
        np.concatenate([side_n, top_n]),
        math.sqrt(2 * math.pi * r * h / n_side),
    )


def cone_surface(obj: ToyObject, density: float) -> Surface:
    """The slanted side (its base lies on the floor); t = sqrt(u) spreads points evenly over it."""
    r, h = obj.size / 2, obj.height
    slant = math.hypot(r, h)
    n = count_for(math.pi * r * slant, density)
    a, b = lattice(n)
    t, ang = np.sqrt(a), 2 * math.pi * b
    pts = np.stack([t * r * np.cos(ang), t * r * np.sin(ang), h * (1 - t)], 1)
    nrm = np.stack([h * np.cos(ang), h * np.sin(ang), np.full(n, r)], 1) / slant
    return pts + np.array([obj.position[0], obj.position[1], 0.0]), nrm, math.sqrt(math.pi * r * slant / n)


SURFACES = {
    Shape.CUBE: cube_surface,
    Shape.SPHERE: sphere_surface,
    Shape.CYLINDER: cylinder_surface,
    Shape.CONE: cone_surface,
}


def floor_colours(scene: ToyScene, xy: np.ndarray) -> np.ndarray:
    """A soft checker near the objects, fading to its mean colour further out (where it is sampled coarsely).

    The cells' edges are ramps rather than steps: a disc blends its neighbours' colours in view-
    dependent proportions, and the colour that shifts between two views is the colour gradient
    times that blend, so soft edges keep a static floor looking the same from every camera.
    """
    light, dark = (np.array(c) for c in FLOORS[scene.floor])
    wave = np.sin(math.pi * xy[:, 0] / scene.checker) * np.sin(math.pi * xy[:, 1] / scene.checker)
    mix = np.clip(0.5 + wave / (2 * CHECKER_SOFTNESS), 0.0, 1.0)[:, None]
    checker = dark + mix * (light - dark)
    lo, hi = CHECKER_FADE
    fade = np.clip((np.linalg.norm(xy, axis=1) - lo) / (hi - lo), 0.0, 1.0)[:, None]
    fade = fade * fade * (3 - 2 * fade)  # smoothstep
    return (1 - fade) * checker + fade * (light + dark) / 2


def floor_points(density: float) -> tuple[np.ndarray, np.ndarray]:
    """Floor samples `[N, 2]` and their spacing: fine inside FINE_FLOOR, coarse out to the dome's rim.

    Sunflower patterns, not square grids: the rasteriser composites overlapping discs in the
    order of their depth, and a grid aligned with the view (rows at equal depth) renders
    visibly sharper than the same grid seen at an angle, so the same floor would look different
    from two cameras and break the reprojection of one frame into another.
    """
    fine_s, far_s = 1 / (density * FLOOR_NEAR_RATIO), 1 / (density * FAR_RATIO)
    fine = disc_points(FINE_FLOOR, count_for(math.pi * FINE_FLOOR**2, density * FLOOR_NEAR_RATIO))
    rim = DOME_RADIUS + far_s
    far = disc_points(rim, count_for(math.pi * rim**2, density * FAR_RATIO))
    # The coarse ring starts a little inside the fine disc so the two overlap with no gap.
    far = far[np.linalg.norm(far, axis=1) > FINE_FLOOR - far_s]
    spacing = np.concatenate([np.full(len(fine), fine_s), np.full(len(far), far_s)])
    return np.concatenate([fine, far]), spacing


def dome_surface(density: float) -> Surface:
    """The upper hemisphere of DOME_RADIUS: uniform height is uniform area on a sphere."""
    area = 2 * math.pi * DOME_RADIUS**2
    n = count_for(area, density * FAR_RATIO)
    a, b = lattice(n)
    ring = np.sqrt(1 - a * a)
    direction = np.stack([ring * np.cos(2 * math.pi * b), ring * np.sin(2 * math.pi * b), a], 1)
    return DOME_RADIUS * direction, -direction, math.sqrt(area / n)


def dome_colours(scene: ToyScene, points: np.ndarray) -> np.ndarray:
    """A horizon-to-zenith gradient with soft bands around the horizon, so pans and orbits show motion."""
    horizon, zenith = (np.array(c) for c in SKIES[scene.sky])
    elev = np.clip(points[:, 2] / DOME_RADIUS, 0.0, 1.0)[:, None]
    base = horizon + np.sqrt(elev) * (zenith - horizon)
    rng = np.random.default_rng(scene.texture_seed)
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    # Whole numbers of waves round the horizon, so the texture has no seam.
    waves = sum(
        np.sin(k * azimuth + m * elev[:, 0] * math.pi + p)
        for k, m, p in zip(rng.integers(4, 10, 3), rng.uniform(-2, 2, 3), rng.uniform(0, 2 * math.pi, 3))
    )
    return np.clip(base * (1 + 0.12 * waves[:, None]), 0.0, 1.0)


def shaded(rgb: RGB, normals: np.ndarray) -> np.ndarray:
    return np.array(rgb) * (AMBIENT + (1 - AMBIENT) * np.clip(normals @ LIGHT, 0.0, None))[:, None]


def quats_from_normals(normals: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of the shortest rotation taking +z to each unit normal: a flat disc's thin axis."""
    q = np.stack([1 + normals[:, 2], -normals[:, 1], normals[:, 0], np.zeros(len(normals))], 1)
    flipped = q[:, 0] < 1e-9  # the normal is -z: any half turn about a horizontal axis
    q[flipped] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def discs(points: np.ndarray, normals: np.ndarray, spacing: np.ndarray | float, colours: np.ndarray) -> Gaussians:
    n = len(points)
    std = DISC_STD * np.broadcast_to(np.asarray(spacing, dtype=np.float64), (n,))
    scales = np.stack([std, std, np.full(n, DISC_THICKNESS)], 1)
    f32 = torch.float32
    return Gaussians(
        torch.as_tensor(points, dtype=f32),
        torch.as_tensor(scales, dtype=f32),
        torch.as_tensor(quats_from_normals(normals), dtype=f32),
        torch.full((n,), DISC_OPACITY, dtype=f32),
        colors=torch.as_tensor(np.clip(colours, 0.0, 1.0), dtype=f32),
    )


def toy_scene_gaussians(scene: ToyScene, density: float = DEFAULT_DENSITY) -> Gaussians:
    """The scene as flat opaque Gaussians (float32, CPU): objects, floor, dome."""
    parts = []
    for obj in scene.objects:
        pts, nrm, spacing = SURFACES[obj.shape](obj, density)
        parts.append(discs(pts, nrm, spacing, shaded(obj.rgb, nrm)))
    xy, floor_spacing = floor_points(density)
    floor = np.concatenate([xy, np.zeros((len(xy), 1))], 1)
    parts.append(discs(floor, np.tile([0.0, 0.0, 1.0], (len(xy), 1)), floor_spacing, floor_colours(scene, xy)))
    pts, nrm, dome_s = dome_surface(density)
    parts.append(discs(pts, nrm, dome_s, dome_colours(scene, pts)))
    return Gaussians.concat(parts)
