"""Run a stage script as a torchrun rank would, except that rank 1 is killed (SIGKILL: no clean-up,
no message) once it has done its share, just before it would leave its part for rank 0 to merge.

Used as `launch: torchrun ... tests/dying_rank.py` by tests/test_scale_out.py.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path

from worldr1 import distributed

script, *args = sys.argv[1:]
if os.environ.get("RANK") == "1":

    def die(world: distributed.World, directory: Path, name: str, *_args: object, **_kwargs: object) -> None:
        # Once rank 0 waits for this rank's part (its own is written), so the failure is always
        # seen at the merge, whichever rank finished sampling first.
        while not (directory / distributed.PARTS / f"{name}-00000-of-00002.parquet").exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)

    distributed.gather_rows = die  # type: ignore[assignment]  # the stage imports it after this
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
