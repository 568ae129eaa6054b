"""Rollout and update throughput with 1 and N ranks, and how much of a round is process start.

    python benchmarks/scale_out.py --profile tiny --ranks 1 2
    python benchmarks/scale_out.py --profile toy --ranks 1 2      # needs data/toy from `dvc repro toy-pretrain`

In a scratch copy of this checkout on the chosen profile (round r000 from `base`): prompts and base
once, then rollout@r000 under each launch (`python`, `torchrun --standalone --nproc-per-node N`),
reconstruct and score once, then update@r000 under each launch, and for N > 1 also with `fsdp:
true`; every stage is started the way dvc.yaml starts it (`python -m worldr1.launch ...`), so the
times include process start, imports and model loading. Then the start-up alone (a process that
imports what the stage imports and loads its models, nothing more), to say what share of a
one-process round it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from main_job import fresh_project  # noqa: E402


def sh(args: list[str], cwd: Path) -> float:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
    }
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def set_launch(project: Path, launch: str, fsdp: bool = False) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    doc = yaml.load((project / "params.yaml").read_text())
    doc["launch"], doc["fsdp"] = launch, fsdp
    with (project / "params.yaml").open("w") as f:
        yaml.dump(doc, f)


def launch_of(ranks: int) -> str:
    return "python" if ranks == 1 else f"{Path(sys.executable).parent}/torchrun --standalone --nproc-per-node {ranks}"


def stage(project: Path, script: str, *args: str) -> float:
    return sh([sys.executable, "-m", "worldr1.launch", f"stages/{script}.py", *args], project)


def main(profile: str = "tiny", ranks: list[int] = typer.Option([1, 2]), repeats: int = 1) -> None:  # noqa: B008
    with tempfile.TemporaryDirectory(prefix="worldr1-scale-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        fresh_project(project)
        sh([str(Path(sys.executable).parent / "worldr1"), "profile", "use", profile], project)
        if profile == "toy":
            if not (ROOT / "data/toy/policy").is_dir():
                raise SystemExit("the toy profile needs data/toy: run `dvc repro toy-pretrain` in this checkout first")
            shutil.copytree(ROOT / "data/toy", project / "data/toy")
        stage(project, "prompts")
        stage(project, "base")
        from worldr1 import config

        params = config.load(project / "params.yaml")
        samples = params.prompts.batch_per_round * params.rollout.group_size
        print(
            f"profile {profile}: {samples} samples a round, {params.rollout.steps} steps, "
            f"{params.rollout.frames}x{params.rollout.height}x{params.rollout.width}, "
            f"{os.cpu_count()} CPUs, cuda: {__import__('torch').cuda.is_available()}"
        )
        times: dict[tuple[str, int], list[float]] = {}
        for n in ranks:
            set_launch(project, launch_of(n))
            for _ in range(repeats):
                times.setdefault(("rollout", n), []).append(stage(project, "rollout", "r000"))
        set_launch(project, "python")
        times[("reconstruct", 1)] = [stage(project, "reconstruct", "r000")]
        times[("score", 1)] = [stage(project, "score", "r000")]
        for n in ranks:
            set_launch(project, launch_of(n))
            for _ in range(repeats):
                times.setdefault(("update", n), []).append(stage(project, "update", "r000"))
        for n in (n for n in ranks if n > 1):
            set_launch(project, launch_of(n), fsdp=True)
            for _ in range(repeats):
                times.setdefault(("update fsdp", n), []).append(stage(project, "update", "r000"))
        # Start-up alone: a process that imports what the stage imports and loads its models.
        startup = {}
        for name, code in {
            "rollout/update": "from worldr1 import config; from worldr1.policy import load_policy; "
            "import worldr1.grpo.trainer; p=config.load(); load_policy(p.policy)",
            "reconstruct": "from worldr1 import config; from worldr1.reconstruct import load_reconstructor; "
            "p=config.load(); c=p.reconstruct; load_reconstructor(c.backend, c.model, c.process_res)",
            "score": "from worldr1 import config; from worldr1.rewards import load_judge; "
            "from worldr1.rewards.score import Scorer; p=config.load(); load_judge(p.reward.judge)",
        }.items():
            startup[name] = min(sh([sys.executable, "-c", code], project) for _ in range(max(repeats, 1)))
    print(f"{'stage':<12} {'ranks':>5} {'wall s':>8} {'samples/s':>10}")
    for (name, n), values in times.items():
        best = min(values)
        print(f"{name:<12} {n:>5} {best:>8.1f} {samples / best:>10.2f}")
    round_1 = sum(min(times[(s, 1)]) for s in ("rollout", "reconstruct", "score", "update") if (s, 1) in times)
    start_1 = 2 * startup["rollout/update"] + startup["reconstruct"] + startup["score"]
    print("start-up (process + imports + models), s: " + ", ".join(f"{k} {v:.1f}" for k, v in startup.items()))
    print(
        f"one-process round (rollout+reconstruct+score+update): {round_1:.1f} s, of which start-up "
        f"{start_1:.1f} s ({100 * start_1 / round_1:.0f}%)"
    )


if __name__ == "__main__":
    typer.run(main)
