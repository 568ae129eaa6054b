"""Probe (issue 16): which toy depth U-Net and schedule makes the best held-out depth per second?

`benchmarks/reconstructor_heldout.py` found the toy reconstructor's depth as wrong on its training
clips as on fresh scenes (log-depth L1 0.046 and 0.045): underfit, not overfit. This trains the
depth head alone (`reconstruct.toy.DepthNet`, toy-pretrain's log-depth L1, pixel noise and
learning-rate schedule) on the toy clips for each candidate and prints its training time and its
log-depth L1 on the training clips and on sound clips of fresh seeds.

Run from the project root after `dvc repro toy-data`:
    python benchmarks/depth_unet_sweep.py --candidates 2:16:600:2e-3,3:16:600:2e-3,3:4:2400:3e-3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from worldr1 import config, store
from worldr1.config import TrainingConfig
from worldr1.reconstruct.toy import DepthNet, frames_tensor
from worldr1.toyworld.data import load_clips
from worldr1.toyworld.pretrain import learning_rate
from worldr1.toyworld.suite import SOUND, make_suite


def train(levels: int, width: int, cfg: TrainingConfig, frames: torch.Tensor, log_depth: torch.Tensor) -> DepthNet:
    torch.manual_seed(0)
    net = DepthNet(width, levels)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        pick = torch.randint(len(frames), (cfg.batch,), generator=gen)
        x = frames[pick].flatten(0, 1)
        x = x + 0.03 * torch.rand(len(x), 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
        loss = (net(x.clamp(0, 1)) - log_depth[pick].flatten(0, 1)).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default="2:16:600:2e-3,3:16:600:2e-3,3:4:2400:3e-3", help="levels:batch:steps:lr")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--clips", type=int, default=48, help="fresh sound clips to measure on")
    args = ap.parse_args()
    params = config.load()
    d = params.toy.data
    data = load_clips(Path(store.Paths().toy_clips))
    frames = frames_tensor(data.frames)
    log_depth = torch.from_numpy(data.depth).clamp_min(1e-3).log()
    fresh = [
        v for vs in make_suite(params.seed + 1, args.clips, d.frames, d.height, d.width, d.supersample) for v in vs
    ]
    fresh = [v for v in fresh if v.kind == SOUND]
    held_x = frames_tensor(np.stack([v.frames for v in fresh])).flatten(0, 1)
    held_d = torch.from_numpy(np.stack([v.depth for v in fresh])).clamp_min(1e-3).log().flatten(0, 1)
    print(f"{'levels:batch:steps:lr':>22} {'train s':>8} {'train L1':>9} {'held-out L1':>12}")
    for cand in args.candidates.split(","):
        levels, batch, steps, lr = cand.split(":")
        cfg = TrainingConfig(steps=int(steps), batch=int(batch), lr=float(lr))
        start = time.perf_counter()
        net = train(int(levels), args.width, cfg, frames, log_depth)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            on_train = float((net(frames[:64].flatten(0, 1)) - log_depth[:64].flatten(0, 1)).abs().mean())
            held = float((net(held_x) - held_d).abs().mean())
        print(f"{cand:>22} {seconds:8.0f} {on_train:9.4f} {held:12.4f}", flush=True)


if __name__ == "__main__":
    main()
