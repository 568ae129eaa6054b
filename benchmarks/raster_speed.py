"""Rasteriser speed: ms per frame for 2k / 20k / 200k Gaussians at 64, 128 and 256 px.

The pure-torch tiled rasteriser always; gsplat's CUDA rasteriser too when a GPU is present.

    python benchmarks/raster_speed.py [--repeats 3] [--sizes 64,128,256] [--counts 2000,20000,200000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from worldr1.geometry.gaussians import Gaussians
from worldr1.geometry.raster import gsplat_cuda_available, render
from worldr1.geometry.synthetic import orbit_cameras


def scene(n: int, device: torch.device) -> Gaussians:
    """`n` random Gaussians filling the view at depths 3 to 7, sized so the scene covers the frame."""
    g = torch.Generator().manual_seed(0)
    means = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([6.0, 6.0, 4.0]) + torch.tensor([0.0, 0.0, 5.0])
    size = 0.6 * (2000 / n) ** (1 / 3)  # keep the covered area about constant as n grows
    return Gaussians(
        means,
        torch.rand(n, 3, generator=g) * size + 0.01,
        torch.randn(n, 4, generator=g),
        torch.rand(n, generator=g),
        colors=torch.rand(n, 3, generator=g),
    ).to(device)


def time_render(g: Gaussians, px: int, backend: str, frames: int, repeats: int, device: torch.device) -> float:
    cams = orbit_cameras(np.linspace(-5, 5, frames), px, px)
    w2c, K = torch.from_numpy(cams.w2c).float().to(device), torch.from_numpy(cams.K).float().to(device)
    render(g, w2c[:1], K[:1], px, px, backend)  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            render(g, w2c, K, px, px, backend)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / frames * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--counts", default="2000,20000,200000")
    args = ap.parse_args()
    runs = [("torch", torch.device("cpu"))]
    if gsplat_cuda_available():
        runs += [("torch", torch.device("cuda")), ("gsplat", torch.device("cuda"))]
    print(f"threads={torch.get_num_threads()} frames/call={args.frames} repeats={args.repeats} (median ms per frame)")
    for backend, device in runs:
        for n in map(int, args.counts.split(",")):
            g = scene(n, device)
            cells = [
                f"{px}px {time_render(g, px, backend, args.frames, args.repeats, device):9.1f}"
                for px in map(int, args.sizes.split(","))
            ]
            print(f"{backend:6s} {device.type:4s} {n:>7d} Gaussians: " + "  ".join(cells))


if __name__ == "__main__":
    main()
