"""What every stage script shares: one error line and exit 2 for a user error, the stage's lock and
the sweep of dead temps, the round a per-round stage runs for, and a progress bar. Stages import
this, not the `worldr1` command (worldr1/cli.py), which imports them back for its own errors."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worldr1 import config, store
from worldr1.distributed import World
from worldr1.errors import UserError
from worldr1.locks import stage_lock

out = Console()
err = Console(stderr=True)


def fail(error: UserError) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(error.line())}", highlight=False, soft_wrap=True)
    raise SystemExit(error.exit_code)


def stage(main: Callable[[], None]) -> None:
    """Run a stage's main: user errors become one line and exit 2, bugs keep their traceback.

    One process per stage takes the stage's lock (the only one, or rank 0 of several) and, holding
    it, removes the temps that dead runs left anywhere in the project's data and reports.
    """
    name = os.environ.get("DVC_STAGE") or stage_name(sys.argv)
    under_dvc, lead = "DVC_STAGE" in os.environ, rank_zero()
    try:
        with stage_lock(name) if lead else contextlib.nullcontext():
            if lead:
                for directory in (Path("data"), Path("reports")):
                    store.sweep_dead_temps(directory, recursive=True)
            main()
    except UserError as error:
        if under_dvc:  # DVC removed the stage's outputs before it ran the command
            error = UserError(error.cause, f"{error.fix}. Meanwhile `dvc checkout {name}` brings back its last outputs")
        fail(error)


def stage_name(argv: list[str]) -> str:
    """`stages/toy_pretrain.py` -> toy-pretrain, `stages/score.py r001` -> score@r001, as dvc.yaml names them."""
    name = Path(argv[0]).stem.replace("_", "-")
    return f"{name}@{argv[1]}" if len(argv) > 1 else name


def rank_zero() -> bool:
    """Not one of a launcher's other ranks (torchrun's RANK, Slurm's SLURM_PROCID)."""
    return os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) == "0"


def round_item(params: config.Params, argv: list[str]) -> tuple[str, config.RoundItemConfig]:
    """The round a per-round stage runs for (its one argument) and its item in params."""
    if len(argv) != 1:
        raise UserError(
            f"expected one round name, got {argv}", "run it as the dvc.yaml stage does: python stages/X.py r000"
        )
    name = argv[0]
    if name not in params.rounds:
        known = ", ".join(params.rounds) or "none"
        raise UserError(f"round {name} is not in params.yaml (rounds: {known})", "add it with: worldr1 rounds add 1")
    return name, params.rounds[name]


@contextlib.contextmanager
def progress_bar(description: str, world: World | None = None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields `tick(done, total)`. Of several ranks only rank 0 draws its
    own share (the others would garble the terminal)."""
    if world is not None and not world.main:
        yield lambda done, total: None
        return
    if world is not None and world.size > 1:
        description = f"{description} (rank 0 of {world.size})"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            yield tick
        except BaseException:
            # A failing stage says one line: the bar goes rather than stay half drawn before it.
            bar.live.transient = True
            raise
