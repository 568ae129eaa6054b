"""What part of a stage's wall time is process start, imports and model loading.

For each stage script: a fresh interpreter that imports the script's module (what every DVC stage
pays before any work), then the model loads each stage does, timed in this process.

    python benchmarks/stage_overhead.py [--runs 3]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    "prompts",
    "toy_data",
    "toy_pretrain",
    "toy_classifier",
    "base",
    "rollout",
    "reconstruct",
    "score",
    "update",
    "report",
    "evaluate",
]


def _median(fn: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _start(stage: str) -> None:
    code = f"import runpy; runpy.run_path({str(ROOT / 'stages' / (stage + '.py'))!r}, run_name='bench')"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def main(runs: int = typer.Option(3, help="runs per figure (median)"), params: Path = ROOT / "params.yaml") -> None:
    from worldr1 import config
    from worldr1.policy import load_policy
    from worldr1.reconstruct import load_reconstructor
    from worldr1.rewards import load_judge

    p = config.load(params)
    print(f"process start + imports, median of {runs} (s):")
    for stage in STAGES:
        print(f"  {stage:12s} {_median(lambda: _start(stage), runs):6.2f}")
    print(f"model loading in a warm process, median of {runs} (s):")
    r = p.reconstruct
    loads = {
        f"policy {p.policy.model}": lambda: load_policy(p.policy),
        f"reconstructor {r.backend}/{r.model}": lambda: load_reconstructor(r.backend, r.model, r.process_res),
        f"judge {p.reward.judge}": lambda: load_judge(p.reward.judge),
    }
    for name, fn in loads.items():
        print(f"  {name:28s} {_median(fn, runs):6.2f}")


if __name__ == "__main__":
    typer.run(main)
