"""`python -m worldr1.launch SCRIPT ARGS...`: run a heavy stage's script under params.yaml's `launch`.

dvc.yaml starts rollout, reconstruct, score, update, probe and evaluate through this module instead of
interpolating `${launch}` into their commands: DVC reruns a stage whose command text changed, and
the artifacts are the same for any number of ranks, so moving a project from one GPU to eight must
not redo its finished rounds (nor miss the run-cache). `launch` is read when the stage starts:

    launch: python                                    one process (the default)
    launch: torchrun --nproc-per-node 8               one node, 8 GPUs
    launch: srun --ntasks-per-node 8 python           Slurm, MASTER_ADDR/MASTER_PORT exported

The line is handed to the shell with the script and its arguments appended, so `$VARS` in it expand.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from worldr1 import config
from worldr1.errors import UserError


def launch_line(params_file: Path) -> str:
    """`launch` of the params file, checked only as far as starting the stage needs (the stage
    validates the whole file itself)."""
    doc = config.read_yaml(params_file)
    launch = doc.get("launch", "python") if isinstance(doc, dict) else "python"
    if not isinstance(launch, str) or not launch.strip() or "\n" in launch:
        raise UserError(
            f"launch in {params_file} must be one command line, got {launch!r}",
            "set it to python, or e.g. 'torchrun --nproc-per-node 8'",
        )
    try:
        program = shlex.split(launch)[0]
    except ValueError as exc:
        raise UserError(f"launch {launch!r} is not a valid command line ({exc})", "check its quotes") from None
    if program != "python" and "$" not in program and shutil.which(program) is None:
        raise UserError(
            f"launch starts with {program!r}, which is not on PATH",
            "install it or put its directory on PATH, or set launch to python",
        )
    return launch.strip()


#: what tells a process its rank (worldr1/distributed.py); `launch: python` runs one process, so a
#: stage started from inside another launcher's environment (a torchrun'd script, an srun step)
#: must not take these for its own
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID")


def command(launch: str, script: str, args: list[str]) -> list[str]:
    """The argv that starts `script args` under `launch`."""
    if launch == "python":
        return [sys.executable, script, *args]  # the interpreter DVC started, as `python script` would be
    return ["/bin/sh", "-c", f'exec {launch} "$@"', "worldr1-launch", script, *args]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise UserError(
            "no stage script given", "run as dvc.yaml does: python -m worldr1.launch stages/rollout.py r000"
        )
    launch = launch_line(Path(config.PARAMS_FILE))
    argv_out = command(launch, argv[0], argv[1:])
    env = dict(os.environ)
    if launch == "python":
        for key in RANK_VARIABLES:
            env.pop(key, None)
    else:
        print(f"launch: {launch} {shlex.join(argv)}", file=sys.stderr, flush=True)
    os.execve(argv_out[0], argv_out, env)


if __name__ == "__main__":
    from worldr1.stagekit import stage

    stage(main)
