"""Where torch runs and how its global RNG is seeded: below every model family (policies,
reconstructors, the judge, HPSv2.1, the toy classifier), so none of them imports another's code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run with torch's global RNG at `seed`, restoring it afterwards (for library inits we don't control)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
