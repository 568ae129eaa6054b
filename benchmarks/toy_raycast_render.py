"""Probe: does an exact (ray-cast) renderer of the toy world lower the reprojection noise floor?

The toy world's frames are splatted from flat Gaussian discs (`toyworld.scene.toy_scene_gaussians`).
Neighbouring discs blend in view-dependent proportions, so even a consistent clip, warped frame to
frame with its TRUE depth and cameras (`rewards.reproject.reprojection_errors`), leaves a few
percent of pixels off by more than the reward's colour tolerance. That floor hides small, local
corruptions (an object changing colour, size or place mid-clip).

Here the same scenes are rendered exactly instead (`toyworld.raycast.raycast_render`, which this
probe's numbers made the toy world's renderer): every pixel casts supersample x supersample rays
against the analytic surfaces, each hit takes the colour its disc would have had, and the
sub-samples are averaged. The Gaussian path is the splatting the toy world used before
(`toyworld.scene.toy_scene_gaussians` through the rasteriser).
The probe prints, for the Gaussian path (gauss) and the ray-cast one (ray):
1. on the first N consistent clips: the share of valid pixels off by more than 0.12 / 0.06, at a
   blur of 0 and 0.8 px, where they lie (floor, dome, objects, next to a silhouette), and the render
   time per frame;
2. with every applicable corruption of each clip rendered too: per corruption and renderer, the
   AUC of P(s(sound) > s(corrupted)) with s = -(mean over ordered frame pairs of the share of valid
   pixels off by more than tol), blur 0.8, and how often a clip beats its own corrupted twin.

Run from the project root (each clip is 5 frames at 32x32, as `plan_clip(seed, 5, 32, 32, 0.0)`):
    python benchmarks/toy_raycast_render.py 40
or in short pieces, summed up afterwards:
    python benchmarks/toy_raycast_render.py 20 --save /tmp/a.json
    python benchmarks/toy_raycast_render.py 20 --offset 20 --save /tmp/b.json
    python benchmarks/toy_raycast_render.py --load /tmp/a.json /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras
from worldr1.geometry.raster import render
from worldr1.geometry.warp import layer_edges
from worldr1.rewards.reproject import reprojection_errors
from worldr1.toyworld.corrupt import CORRUPTIONS, Corruption, plan_clip
from worldr1.toyworld.data import clip_seed
from worldr1.toyworld.raycast import DOME, FLOOR, OBJECT, nearest_surface, raycast_render, subpixel_rays, true_depth
from worldr1.toyworld.scene import ToyScene, toy_scene_gaussians
from worldr1.validity import auc as validity_auc

FRAMES, SIZE = 5, 32
TOLS = (0.12, 0.06)
BLURS = (0.0, 0.8)
SCORE_BLUR = 0.8


def centre_labels(scene: ToyScene, w2c: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """The surface label `[H, W]` each pixel centre sees (where the errors lie)."""
    o, d = subpixel_rays(w2c, K, height, width, 1)
    return nearest_surface(scene, o, d)[1][0]


# --- clips ---


@dataclass(frozen=True)
class Rendered:
    """Frames `float32 [F, H, W, 3]` (through uint8, as the data set stores them), true depth, seconds."""

    frames: torch.Tensor
    depth: torch.Tensor
    seconds: float


def quantised(rgb: np.ndarray) -> torch.Tensor:
    # Both renderers go through uint8, so neither gains from finer colour steps than the data keeps.
    return torch.from_numpy(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).float() / 255


def render_gauss(scenes: Sequence[ToyScene], cameras: Cameras) -> Rendered:
    """The splatted frames the toy world used before (discs through the torch rasteriser, 8 px tiles)."""
    start = time.perf_counter()
    rgb = [
        render(
            toy_scene_gaussians(s),
            torch.from_numpy(cameras.w2c[f : f + 1]).float(),
            torch.from_numpy(cameras.K[f : f + 1]).float(),
            cameras.width,
            cameras.height,
            "torch",
            8,
        ).rgb
        for f, s in enumerate(scenes)
    ]
    frames = quantised(torch.cat(rgb).numpy())
    seconds = time.perf_counter() - start
    depth = true_depth_of(scenes, cameras)
    return Rendered(frames, depth, seconds)


def true_depth_of(scenes: Sequence[ToyScene], cameras: Cameras) -> torch.Tensor:
    return torch.from_numpy(
        np.concatenate(
            [
                true_depth(s, cameras.w2c[f : f + 1], cameras.K[f : f + 1], cameras.height, cameras.width)
                for f, s in enumerate(scenes)
            ]
        ).astype(np.float32)
    )


def render_ray(scenes: Sequence[ToyScene], cameras: Cameras, supersample: int) -> Rendered:
    start = time.perf_counter()
    parts = [
        raycast_render(s, cameras.w2c[f : f + 1], cameras.K[f : f + 1], cameras.height, cameras.width, supersample)
        for f, s in enumerate(scenes)
    ]
    seconds = time.perf_counter() - start
    rgb, depth = (np.concatenate(x) for x in zip(*parts))
    return Rendered(quantised(rgb), torch.from_numpy(depth.astype(np.float32)), seconds)


def pair_errors(
    r: Rendered, cameras: Cameras, blur: float
) -> tuple[list[tuple[int, int]], list[torch.Tensor], list[torch.Tensor]]:
    e = reprojection_errors(r.frames, r.depth, torch.from_numpy(cameras.w2c), torch.from_numpy(cameras.K), blur)
    return e.pairs, e.error, e.valid


def pooled_share(errors: list[torch.Tensor], valids: list[torch.Tensor], tol: float) -> float:
    judged = torch.cat([e[v] for e, v in zip(errors, valids)])
    return float((judged > tol).float().mean()) if judged.numel() else math.nan


def clip_score(errors: list[torch.Tensor], valids: list[torch.Tensor], tol: float) -> float:
    """-(mean over ordered pairs of the share of valid pixels off by more than tol); pairs that judge nothing skip."""
    shares = [float((e[v] > tol).float().mean()) for e, v in zip(errors, valids) if bool(v.any())]
    return -float(np.mean(shares)) if shares else math.nan


def auc(good: list[float], bad: list[float]) -> float:
    """`validity.auc` with non-finite scores left out, NaN when a side is empty."""
    value = validity_auc([x for x in good if math.isfinite(x)], [x for x in bad if math.isfinite(x)])
    return math.nan if value is None else value


PLACES = ("floor", "dome", "object", "near edge")


def error_places(
    errors: list[torch.Tensor],
    valids: list[torch.Tensor],
    pairs: list[tuple[int, int]],
    labels: np.ndarray,
    depth: torch.Tensor,
    tol: float,
) -> np.ndarray:
    """Counts of bad pixels `[len(PLACES)]` by the surface frame a sees there (a pixel within 2 px of a
    silhouette counts as 'near edge' instead: warps there resample across the layer edge)."""
    edges = layer_edges(depth).float()[:, None]
    near = (torch.nn.functional.max_pool2d(edges, 5, 1, 2)[:, 0] > 0).numpy()
    out = np.zeros(len(PLACES))
    for (a, _), e, v in zip(pairs, errors, valids):
        bad = ((e > tol) & v).numpy()
        lab = labels[a]
        out[3] += (bad & near[a]).sum()
        far = bad & ~near[a]
        out[0] += (far & (lab == FLOOR)).sum()
        out[1] += (far & (lab == DOME)).sum()
        out[2] += (far & (lab >= OBJECT)).sum()
    return out


RENDERERS = ("gauss", "ray")


def key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def clip_record(index: int, supersample: int, size: int = SIZE) -> dict:
    """Everything the tables need from one seed: its sound clip and its corrupted twins, both renderers.

    Plain JSON, so a long probe can run as several short ones (`--offset`, `--save`) and be summed
    up afterwards (`--load`).
    """
    seed = clip_seed(0, index)
    plan = plan_clip(seed, FRAMES, size, size, inconsistent_share=0.0)
    cams = plan.cameras
    twins: dict[Corruption, Sequence[ToyScene]] = {}
    for kind, make in CORRUPTIONS.items():
        # A fresh generator per kind: whether one applies does not depend on the others.
        scenes = make(plan.scene, cams, np.random.default_rng(seed))
        if scenes is not None:
            twins[kind] = scenes
    labels = np.stack([centre_labels(plan.scene, cams.w2c[f], cams.K[f], size, size) for f in range(FRAMES)])
    rec: dict = {
        "index": index,
        "seed": seed,
        "size": size,
        "frames": FRAMES * (1 + len(twins)),
        "seconds": {},
        "floor": {},
        "places": {},
        "sound": {},
        "broken": {},
    }
    for name in RENDERERS:

        def draw(scenes: Sequence[ToyScene]) -> Rendered:
            return render_gauss(scenes, cams) if name == "gauss" else render_ray(scenes, cams, supersample)

        base = draw(plan.scenes)
        seconds = base.seconds
        for blur in BLURS:
            pairs, errs, vals = pair_errors(base, cams, blur)
            for tol in TOLS:
                rec["floor"][key(name, blur, tol)] = pooled_share(errs, vals, tol)
                if blur == SCORE_BLUR:
                    rec["sound"][key(name, tol)] = clip_score(errs, vals, tol)
            if blur == SCORE_BLUR:
                rec["places"][name] = error_places(errs, vals, pairs, labels, base.depth, TOLS[1]).tolist()
        for kind, scenes in twins.items():
            r = draw(scenes)
            seconds += r.seconds
            _, errs, vals = pair_errors(r, cams, SCORE_BLUR)
            for tol in TOLS:
                rec["broken"][key(name, tol, kind.value)] = clip_score(errs, vals, tol)
        rec["seconds"][name] = seconds
    return rec


def summarise(records: list[dict], supersample: int) -> None:
    frames = sum(r["frames"] for r in records)
    size = records[0]["size"]
    print(f"{len(records)} consistent clips, {FRAMES} frames at {size}x{size}, ray supersample {supersample}")
    print(
        "render ms/frame: "
        + ", ".join(f"{n} {1000 * sum(r['seconds'][n] for r in records) / frames:.1f}" for n in RENDERERS)
        + f"  ({frames} frames each, true depth included)"
    )
    print("\n1. noise floor: mean over clips of the share of valid pixels with error > tol (true depth, cameras)")
    print(f"{'renderer':<9}" + "".join(f"  blur {b:.1f} >{t:.2f}" for b in BLURS for t in TOLS))
    for n in RENDERERS:
        print(
            f"{n:<9}"
            + "".join(
                f"  {100 * np.nanmean([r['floor'][key(n, b, t)] for r in records]):13.3f}%" for b in BLURS for t in TOLS
            )
        )
    print(f"\n   where the errors > {TOLS[1]} (blur {SCORE_BLUR}) lie, share of them:")
    print(f"{'renderer':<9}" + "".join(f"  {p:>9}" for p in PLACES) + "  bad pixels")
    for n in RENDERERS:
        counts = np.sum([r["places"][n] for r in records], 0)
        total = counts.sum()
        print(f"{n:<9}" + "".join(f"  {100 * c / max(total, 1):8.1f}%" for c in counts) + f"  {int(total)}")
    print(
        f"\n2. AUC P(s(sound) > s(corrupted)) over all clip pairs (blur {SCORE_BLUR}); "
        "(twin): share of seeds whose sound clip beats its own corrupted twin, ties half"
    )
    print(f"{'corruption':<14}{'n':>4}" + "".join(f"  {n} >{t:.2f} (twin)" for n in RENDERERS for t in TOLS))
    for kind in CORRUPTIONS:
        cells, count = "", 0
        for n in RENDERERS:
            for t in TOLS:
                k = key(n, t, kind.value)
                both = [(r["sound"][key(n, t)], r["broken"][k]) for r in records if k in r["broken"]]
                count = len(both)
                sound = [r["sound"][key(n, t)] for r in records]
                twin = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in both]) if both else math.nan
                width = len(n) + 6
                cells += f"  {auc(sound, [b for _, b in both]):{width}.3f} ({twin:.2f})"
        print(f"{kind.value:<14}{count:>4}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=40, help="clips (seeds clip_seed(0, i))")
    ap.add_argument("--offset", type=int, default=0, help="first clip index")
    ap.add_argument("--supersample", type=int, default=3)
    ap.add_argument("--size", type=int, default=SIZE, help="frame height and width")
    ap.add_argument("--save", type=Path, help="write the clips' records here (JSON)")
    ap.add_argument("--load", type=Path, nargs="+", help="only summarise records saved earlier")
    args = ap.parse_args()
    # The machine is shared with a pipeline run.
    torch.set_num_threads(1)
    if args.load:
        records = [r for p in args.load for r in json.loads(p.read_text())]
    else:
        records = [clip_record(i, args.supersample, args.size) for i in range(args.offset, args.offset + args.n)]
        if args.save:
            args.save.write_text(json.dumps(records))
    summarise(records, args.supersample)


if __name__ == "__main__":
    main()
