"""Data parallelism for the heavy stages: ranks from the launcher, deterministic shards, merged parts.

A stage started by `torchrun` (or `srun`) runs once per rank. Each rank takes the items whose
position in the stage's canonical order falls to it (`World.mine`), writes its files into one
directory that every rank shares, and leaves its rows as a part file; rank 0 merges the parts in the
canonical order and publishes the output the way one process would. The assignment only decides
who computes an item, never what is computed, so the artifacts are the same for any world size.

A rank that dies makes the others fail at the next collective (or be stopped by the launcher), so
no merged output is published; the shared temporary directory goes with the failure, or with the
next run's clean-up when the process was killed outright.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from worldr1 import store
from worldr1.errors import UserError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

# Ranks wait at a merge for the slowest shard; with Wan 14B one shard can take hours, and a rank
# that dies is noticed at once anyway (its sockets close, or the launcher stops the others).
TIMEOUT = datetime.timedelta(hours=12)
# Start-up, and update's gradient all-reduce (ranks in step with each other): minutes, not hours.
START_TIMEOUT = datetime.timedelta(minutes=30)
PARTS = "parts"
FIX = "the launcher's log names the rank that failed and why (torchrun: 'Root Cause'); fix that and rerun: dvc repro"


class RankFailed(UserError):
    """Another rank died, or the launcher stopped this one: nothing was published."""

    exit_code = 1


class _Stopped(BaseException):
    """SIGTERM from the launcher: a BaseException, so no `except Exception` on the way (a sample
    marked failed, a weight file reported missing) can swallow it; `joined` turns it into RankFailed."""


@dataclass(frozen=True)
class World:
    """This process's place among the stage's ranks (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def label(self) -> str:
        return f"rank {self.rank} of {self.size}"

    def mine(self, items: Sequence[T], block: int = 1) -> list[T]:
        """This rank's share of `items`: blocks of `block` consecutive items, dealt round-robin."""
        return [x for i, x in enumerate(items) if (i // block) % self.size == self.rank]


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The world torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or Slurm's srun (SLURM_PROCID,
    SLURM_STEP_NUM_TASKS, SLURM_LOCALID) describes; one process when neither does."""
    env = os.environ if env is None else env
    # Slurm's job-wide SLURM_NTASKS is also set in an salloc shell or a batch script, where a
    # stage runs alone: only an srun step (SLURM_STEP_NUM_TASKS) makes ranks.
    for rank_key, size_key, local_key in (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"),
    ):
        if size_key not in env:
            continue
        try:
            world = World(int(env.get(rank_key, "0")), int(env[size_key]), int(env.get(local_key, "0")))
        except ValueError:
            raise UserError(
                f"{rank_key}={env.get(rank_key)!r} / {size_key}={env.get(size_key)!r} are not integers",
                "start the stage through the `launch` of params.yaml (torchrun or srun)",
            ) from None
        if not (world.size >= 1 and 0 <= world.rank < world.size and world.local_rank >= 0):
            raise UserError(
                f"{rank_key}={world.rank} does not fit {size_key}={world.size}",
                "start the stage through the `launch` of params.yaml (torchrun or srun)",
            )
        return world
    return World()


# ---------------------------------------------------------------------------------------------
# The process group

_coordination: Any = None  # a gloo group: merges wait on the CPU whatever the device backend


def _stopped(signum: int, frame: object) -> None:  # noqa: ARG001
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the launcher may repeat it during the clean-up
    raise _Stopped


@contextlib.contextmanager
def cleanup_uninterrupted() -> Iterator[None]:
    """Inside a block that removes what it wrote when it fails: once it fails, the launcher's SIGTERM
    (sent when any rank dies) is ignored, so the removal that follows runs to its end. Without it a
    rank that saw its peer die at the merge could be stopped half-way through deleting its temporary
    directory, and leave it behind while saying that nothing was written."""
    try:
        yield
    except BaseException:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise


@contextlib.contextmanager
def joined(world: World) -> Iterator[World]:
    """Inside: the process group of `world` (nothing to join for one process).

    On a GPU each rank takes the device of its local rank and gradients go over NCCL; merges and
    checks go over gloo on the CPU, which notices a dead peer at once.
    """
    global _coordination
    if world.size == 1:
        yield world
        return
    import torch
    import torch.distributed as dist

    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise UserError(
            f"{world.label} but {' and '.join(missing)} not set",
            "launch with torchrun, or under srun export MASTER_ADDR (the first node's host name) "
            "and MASTER_PORT (a free port), as README 'Scaling out' shows",
        )
    backend = "gloo"
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if count > 1 and world.local_rank >= count:
            raise UserError(
                f"{world.label} has local rank {world.local_rank} but this node shows {count} GPUs",
                "start at most one rank per GPU (torchrun --nproc-per-node, srun --ntasks-per-node)",
            )
        # srun --gpus-per-task shows each rank one device; torchrun and --gpus-per-node show them all.
        torch.cuda.set_device(world.local_rank % count)
        backend = "cpu:gloo,cuda:nccl"
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        try:
            dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=START_TIMEOUT)
        except (RuntimeError, ValueError) as exc:  # no peers within the timeout, an unusable address
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise RankFailed(
                f"{world.label} could not join the others at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} ({first})",
                "start every rank with the same launch line; see README 'Scaling out'",
            ) from None
        _coordination = dist.new_group(backend="gloo", timeout=TIMEOUT)
        yield world
    except _Stopped:
        raise RankFailed(
            "this rank was stopped by its launcher (SIGTERM), most likely because another rank failed; "
            "nothing was written",
            FIX,
        ) from None
    except BaseException:
        # The launcher stops the other ranks when one fails: this one is failing already, and must
        # finish removing what it wrote and saying why rather than die half-way.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise
    else:
        signal.signal(signal.SIGTERM, previous)
    finally:
        _coordination = None
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def _collective(world: World, what: str, call: Callable[[], T]) -> T:
    """Run a collective; a dead peer becomes one line instead of gloo's trace."""
    try:
        return call()
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # gloo's "[.../pair.cc:561] Connection closed by peer [host]:port. This is typically ...": the middle.
        first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:200]
        raise RankFailed(f"{world.label} lost a peer while {what} ({first}); nothing was written", FIX) from None


def barrier(world: World, what: str) -> None:
    if world.size > 1:
        import torch.distributed as dist

        _collective(world, what, lambda: dist.barrier(group=_coordination))


def broadcast(world: World, value: T, what: str) -> T:
    """Rank 0's `value` on every rank (a small picklable object)."""
    if world.size == 1:
        return value
    import torch.distributed as dist

    box = [value if world.main else None]
    _collective(world, what, lambda: dist.broadcast_object_list(box, src=0, group=_coordination))
    return box[0]  # type: ignore[return-value]


def all_gather(world: World, value: T, what: str) -> list[T]:
    """Every rank's `value`, in rank order, on every rank (small picklable objects)."""
    if world.size == 1:
        return [value]
    import torch.distributed as dist

    box: list[Any] = [None] * world.size
    _collective(world, what, lambda: dist.all_gather_object(box, value, group=_coordination))
    return box


def all_reduce_sum(world: World, tensor: Any, what: str) -> None:
    """Sum `tensor` over the ranks in place (over NCCL when it lives on a GPU)."""
    if world.size > 1:
        import torch.distributed as dist

        _collective(world, what, lambda: dist.all_reduce(tensor))


# ---------------------------------------------------------------------------------------------
# FSDP: the frozen model sharded over the ranks


def fsdp_mesh_shape(local_ranks: Sequence[int]) -> tuple[int, int]:
    """(replicas, shard size) of the FSDP mesh, from every rank's local rank in rank order.

    Ranks laid out node by node with the same count on each (torchrun; srun's block distribution)
    shard the model within their node and keep one replica per node (HSDP): the weights gathered
    at every block call then travel over the node's own links, never between nodes. Any other
    layout, or one rank per node, shards over all the ranks.
    """
    size, per_node = len(local_ranks), max(local_ranks, default=0) + 1
    if per_node > 1 and size % per_node == 0 and list(local_ranks) == list(range(per_node)) * (size // per_node):
        return size // per_node, per_node
    return 1, size


def shard_frozen(
    world: World, model: torch.nn.Module, blocks: Sequence[torch.nn.Module], keep: Sequence[torch.nn.Parameter]
) -> None:
    """FSDP (torch's `fully_shard`): each rank keeps its share of `model`'s weights and gathers a
    block's weights from the others for each call of that block, freeing them after it, so no rank
    holds the whole model for long. Over several nodes each node shards one replica
    (`fsdp_mesh_shape`). The `keep` parameters (the LoRA adapter) stay whole on every rank,
    outside FSDP: they are what the trainer updates and all-reduces, saves and averages, exactly as
    without FSDP, and the gathered weights are the loaded ones bit for bit, so the numbers do not
    change.

    Every call of the model is then a collective: all ranks must call it equally often (the trainer's
    lockstep). One process: nothing to shard.
    """
    if world.size == 1:
        return
    import warnings

    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(p for p in model.parameters()).device
    replicas, shard = fsdp_mesh_shape(all_gather(world, world.local_rank, "laying out the FSDP mesh"))
    mesh = (
        init_device_mesh(device.type, (shard,))
        if replicas == 1
        else init_device_mesh(device.type, (replicas, shard), mesh_dim_names=("replicate", "shard"))
    )
    ignored = set(keep)
    for block in blocks:
        fully_shard(block, mesh=mesh, ignored_params=ignored)
    fully_shard(model, mesh=mesh, ignored_params=ignored)
    # FSDP warns that Wan's output is a view an in-place op could detach from its backward hook;
    # the policies only read it (`.float()`, out-of-place arithmetic).
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")


# ---------------------------------------------------------------------------------------------
# Shared directories and merged parts


@contextlib.contextmanager
def atomic_dir(world: World, target: str | Path) -> Iterator[Path]:
    """`store.atomic_dir` shared by every rank: rank 0 makes the temporary directory and moves it
    into place when its block ends (after the merge, so every rank's files are in)."""
    if world.size == 1:
        with store.atomic_dir(target) as tmp:
            yield tmp
        return
    if world.main:
        with store.atomic_dir(target) as tmp, cleanup_uninterrupted():
            broadcast(world, str(tmp), "sharing the output directory")
            yield tmp
        return
    yield Path(broadcast(world, "", "sharing the output directory"))


@contextlib.contextmanager
def scratch(world: World, beside: str | Path) -> Iterator[Path]:
    """A temporary directory every rank shares, next to the output `beside`, removed by rank 0 at the end."""
    target = Path(beside)
    if not world.main:
        yield Path(broadcast(world, "", "sharing the parts directory"))
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    parts = target.with_name(f"{target.name}.parts")
    store.sweep_dead_temps_of(parts)
    tmp = store.temp_sibling(parts)
    tmp.mkdir()
    try:
        with cleanup_uninterrupted():
            yield Path(broadcast(world, str(tmp), "sharing the parts directory"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def gather_rows(
    world: World,
    directory: Path,
    name: str,
    rows: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], Hashable],
    order: Sequence[Hashable],
    spec: store.TableSchema | None = None,
) -> list[dict[str, Any]] | None:
    """Every rank's `rows`, on rank 0, in `order` of `key` (None on the other ranks).

    Each rank writes its rows as `directory/parts/<name>-<rank>.parquet` (atomically; conformed to
    `spec` when given), waits for the others, and rank 0 reads them back. Rows missing from every
    part or present twice fail the merge: nothing partial is ever published.
    """
    if world.size > 1:
        part = directory / PARTS / f"{name}-{world.rank:05d}-of-{world.size:05d}.parquet"
        if rows:
            table = pa.Table.from_pylist(rows)
            table = store.conform(table, spec) if spec is not None else table
        else:  # a rank with nothing to do (fewer items than ranks)
            table = spec.schema.empty_table() if spec is not None else pa.table({})
        with store.atomic_open(str(part)) as f:
            pq.write_table(table, f)
        barrier(world, f"merging the {name} parts")
        if not world.main:
            return None
        tables = []
        for rank in range(world.size):
            path = directory / PARTS / f"{name}-{rank:05d}-of-{world.size:05d}.parquet"
            if not path.is_file():
                raise RankFailed(
                    f"rank {rank} of {world.size} left no {name} part; nothing was written",
                    "read that rank's error above, fix it and rerun: dvc repro",
                )
            tables.append(pq.read_table(path))
        shutil.rmtree(directory / PARTS)
        rows = pa.concat_tables(tables, promote_options="permissive").to_pylist()
    position: dict[Hashable, int] = {}
    for i, row in enumerate(rows):
        if key(row) in position:
            raise RankFailed(
                f"{key(row)} appears twice among the {name} rows; nothing was written",
                "make sure no other run of this stage writes the same round, and rerun: dvc repro",
            )
        position[key(row)] = i
    missing = [k for k in order if k not in position]
    if missing or len(position) != len(order):
        raise RankFailed(
            f"the {name} rows hold {len(position)} of the {len(order)} expected (e.g. {missing[:1]} "
            "missing); nothing was written",
            "make sure no other run of this stage writes the same round, and rerun: dvc repro",
        )
    return [rows[position[k]] for k in order]
