"""One writer per stage: a run takes `.worldr1/locks/<stage>.lock` for as long as it runs.

The lock is an flock on the file, so the kernel drops it the moment its process dies, however it
dies; a killed run's lock is free at once and nothing has to judge whether it is stale. The file
holds the holder's pid, to name it to a second run, which refuses in one line: two writers of one
stage would sweep and replace each other's outputs half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from worldr1.errors import UserError

LOCKS = Path(".worldr1") / "locks"


@contextlib.contextmanager
def stage_lock(stage: str, root: Path = Path(".")) -> Iterator[None]:
    """Hold `stage`'s lock under `root` for the block, or raise a UserError naming who holds it."""
    path = (
        root / LOCKS / (stage.replace("/", "_").replace(":", "_") + ".lock")
    )  # dvc.yaml in a subfolder: sub/dvc.yaml:x
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split() or ["?", "?"]
            raise UserError(
                f"{stage} is already running (pid {holder[0]} on {holder[-1]}); a second run would break its outputs",
                f"wait for it to finish, or stop it first (kill {holder[0]})",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock; the file stays, so no run ever locks a path another just unlinked
