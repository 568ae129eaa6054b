"""The reconstructor `reconstruct.backend` names: Depth Anything 3, or the toy reconstructor."""

from __future__ import annotations

from pathlib import Path

from worldr1.errors import UserError
from worldr1.reconstruct.base import Reconstructor


def load_reconstructor(backend: str, model: str, process_res: int, root: str = ".") -> Reconstructor:
    if backend == "da3":
        from worldr1.reconstruct.da3 import load_da3

        return load_da3(model, process_res)
    if backend == "toy":
        from worldr1.reconstruct.toy import load_toy_reconstructor
        from worldr1.store import Paths

        return load_toy_reconstructor(Path(Paths(root).toy_reconstructor))
    raise UserError(f"unknown reconstruct.backend {backend!r}", "use da3 or toy")
