"""Artifacts: where each stage's outputs live, atomic writes through fsspec, Parquet schemas.

A stage leaves either its complete outputs or none: every file is written beside its target
and renamed into place, so a crash or an exception mid-write leaves the old file (or nothing).
What a killed process leaves is named for its host and pid (`temp_sibling`): DVC never hashes it
(.dvcignore), and the next writer in that directory, or the next stage, removes it once that
process is dead; a live writer's temp is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

import worldr1
from worldr1.errors import UserError
from worldr1.rewards import terms as registry
from worldr1.rewards.terms import REWARD_TERMS, REWARDS_VERSION, RewardTerm

# ---------------------------------------------------------------------------------------------
# Paths (README, "What runs today": one folder per round, one file per stage output)


@dataclass(frozen=True)
class Paths:
    """Every artifact path of the pipeline, under one root (a directory or an fsspec URL)."""

    root: str = "."

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    @property
    def prompt_sources(self) -> str:
        return self._join("data", "sources")

    @property
    def prompts(self) -> str:
        return self._join("data", "prompts", "prompts.parquet")

    @property
    def prompts_report(self) -> str:
        return self._join("reports", "prompts.json")

    @property
    def enhanced_dir(self) -> str:
        return self._join("data", "prompts", "enhanced")

    def enhanced_text(self, source_path: str) -> str:
        """The enhance stage's prompts of one plain source file: enhanced/<its stem>.txt."""
        return self._join("data", "prompts", "enhanced", f"{Path(source_path).stem}.txt")

    @property
    def enhance_cache(self) -> str:
        return self._join("data", "prompts", "enhance-cache.parquet")

    @property
    def enhance_report(self) -> str:
        return self._join("reports", "enhance.json")

    @property
    def toy_clips(self) -> str:
        return self._join("data", "toy", "clips")

    @property
    def toy_policy(self) -> str:
        return self._join("data", "toy", "policy")

    @property
    def toy_reconstructor(self) -> str:
        return self._join("data", "toy", "reconstructor")

    @property
    def toy_classifier(self) -> str:
        return self._join("data", "toy", "classifier")

    @property
    def toy_report(self) -> str:
        return self._join("reports", "toy-pretrain.json")

    @property
    def toy_classifier_report(self) -> str:
        return self._join("reports", "toy-classifier.json")

    def round_dir(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name)

    def rollout_dir(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name, "rollout")

    def recon_dir(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name, "recon")

    def rewards(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name, "rewards.parquet")

    def samples(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name, "rollout", "samples.parquet")

    def rewards_report(self, round_name: str) -> str:
        return self._join("reports", "rounds", f"{round_name}-rewards.json")

    def policy_dir(self, round_name: str) -> str:
        return self._join("data", "rounds", round_name, "policy")

    def round_report(self, round_name: str) -> str:
        return self._join("reports", "rounds", f"{round_name}.json")

    def probe_report(self, round_name: str) -> str:
        return self._join("reports", "rounds", f"{round_name}-probe.json")

    @property
    def rewards_csv(self) -> str:
        return self._join("reports", "rewards.csv")

    @property
    def probe_csv(self) -> str:
        return self._join("reports", "probe.csv")

    @property
    def eval_report(self) -> str:
        return self._join("reports", "eval.json")

    @property
    def validity_report(self) -> str:
        return self._join("reports", "reward-validity.json")


# ---------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_open(url: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open `url` for writing so that readers see the old content or the complete new one.

    Local paths: a temp file in the same directory, fsynced, then `os.replace` (atomic on
    POSIX). Other fsspec URLs: a temp object beside the target, then `fs.mv`; object stores
    publish a PUT whole, so the target never shows a partial upload either way.
    """
    if mode not in {"wb", "w"}:
        raise ValueError(f"atomic_open writes only ('wb' or 'w'), not {mode!r}")
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        with _atomic_local(Path(path), mode) as f:
            yield f
        return
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, mode) as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


@contextlib.contextmanager
def _atomic_local(path: Path, mode: str) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_of(path)
    tmp = temp_sibling(path)
    try:
        kwargs: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with open(tmp, "x" + mode[1:], **kwargs) as f:  # "x": never onto an existing file
            yield f
            f.flush()
            os.fsync(f.fileno())
        # DVC's link cache leaves read-only outputs; the rename replaces the link, not the cache.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory in a temp sibling and move it into place whole when the block succeeds.

    An existing directory is replaced only after the new one is complete; on an exception the
    temp directory is removed and the old one (if any) is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_of(target)  # several GB with Wan's steps, after a kill
    tmp = temp_sibling(target)
    tmp.mkdir()
    try:
        yield tmp
        tmp.chmod(0o755)
        if target.exists():
            old = temp_sibling(target, "old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------
# Temps: `.<target>.<tmp|old>-<host>-<pid>-<token><ext>` beside the target (the same filesystem,
# so the final rename is atomic). .dvcignore and .gitignore list `.*.tmp-*` and `.*.old-*`.

TEMP_NAME = re.compile(r"^\..+\.(?:tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}(?:\.\w+)?$")


@lru_cache(maxsize=1)
def host_tag() -> str:
    """This machine, in a temp's name: on a shared filesystem a pid means nothing on another host."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_sibling(target: Path, kind: str = "tmp", ext: str = "") -> Path:
    """A fresh name beside `target` for a temp file or directory of this process."""
    return target.with_name(f".{target.name}.{kind}-{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def dead_temp(path: Path) -> bool:
    """A temp that a process of this host left and that process is gone."""
    match = TEMP_NAME.match(path.name)
    return match is not None and match["host"] == host_tag() and not pid_alive(int(match["pid"]))


def sweep_dead_temps(directory: Path, recursive: bool = False) -> list[Path]:
    """Remove the temps in `directory` (and below it, if `recursive`) whose process is dead."""
    removed = []
    for root, dirs, files in os.walk(directory):
        removed += [_remove(Path(root, name)) for name in [*dirs, *files] if dead_temp(Path(root, name))]
        dirs[:] = [d for d in dirs if recursive and not TEMP_NAME.match(d)]
    return removed


def sweep_dead_temps_of(target: Path) -> list[Path]:
    """Remove the temps of `target` alone whose process is dead: what a writer checks before it
    writes, without listing a directory of thousands of videos on every file."""
    return [_remove(p) for p in target.parent.glob(f".{glob.escape(target.name)}.*-*") if dead_temp(p)]


def _remove(path: Path) -> Path:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return path


def sort_safetensors_metadata(path: Path) -> None:
    """Rewrite a safetensors file with its `__metadata__` keys in sorted order. safetensors keeps the
    metadata in a hash map whose order changes from one process to the next, so the same tensors
    gave a different file (and DVC hash) per run. The tensor bytes stay as they are: their offsets
    count from the end of the header."""
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        data = f.read()
    header = {k: dict(sorted(v.items())) if k == "__metadata__" else v for k, v in header.items()}
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    raw += b" " * (-len(raw) % 8)  # as safetensors pads it: the tensor data stays 8-byte aligned
    with _atomic_local(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + data)


def write_text(url: str, text: str) -> None:
    with atomic_open(url, "w") as f:
        f.write(text)


def write_json(url: str, data: Any) -> None:
    write_text(url, json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and path of a URL; an unknown protocol or a missing driver is a user error."""
    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        protocol = url.split("://", 1)[0] if "://" in url else "local"
        raise UserError(
            f"cannot open {url}: {exc}",
            f"use a local path or an fsspec URL whose driver is installed (pip install the one for {protocol}://)",
        ) from None


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.exists(path))


# ---------------------------------------------------------------------------------------------
# Parquet tables: each schema is declared once, here, and every file carries its provenance.

META_PREFIX = "worldr1."


@dataclass(frozen=True)
class TableSchema:
    name: str
    version: int
    schema: pa.Schema
    #: the DVC stage that writes it, for error messages
    stage: str


PROMPTS = TableSchema(
    name="prompts",
    version=1,
    schema=pa.schema(
        [
            pa.field("prompt_id", pa.string(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("camera", pa.list_(pa.string()), nullable=False),
            # Why `camera` is empty: no camera sentence, or a move the grammar does not know.
            pa.field("camera_reason", pa.string()),
            pa.field("source", pa.string(), nullable=False),
            # 1-based line in the source file, or the generator's index.
            pa.field("source_line", pa.int32(), nullable=False),
        ]
    ),
    stage="prompts",
)


# The enhance stage: one row per plain line of every source, kept or not.
ENHANCED = TableSchema(
    name="enhanced",
    version=1,
    schema=pa.schema(
        [
            pa.field("source", pa.string(), nullable=False),
            pa.field("source_line", pa.int32(), nullable=False),
            pa.field("input", pa.string(), nullable=False),
            # The enhanced prompt (status ok), else null.
            pa.field("output", pa.string()),
            # The assigned moves, which the output's camera sentence parses to.
            pa.field("camera", pa.list_(pa.string()), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            # Answers asked for (0 when the line came from the cache).
            pa.field("attempts", pa.int32(), nullable=False),
            pa.field("status", pa.string(), nullable=False),  # ok | failed
            # Why the last answer was refused, or why none came (status failed).
            pa.field("reason", pa.string()),
            pa.field("cached", pa.bool_(), nullable=False),
        ]
    ),
    stage="enhance",
)

# The enhance stage's answers per line, kept across runs (a persisted output): key = hash of the
# plain text, the moves, the model and its settings, and the instructions.
ENHANCE_CACHE = TableSchema(
    name="enhance-cache",
    version=1,
    schema=pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("input", pa.string(), nullable=False),
            pa.field("camera", pa.list_(pa.string()), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            pa.field("output", pa.string()),
            pa.field("attempts", pa.int32(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("reason", pa.string()),
        ]
    ),
    stage="enhance",
)


SAMPLES = TableSchema(
    name="samples",
    version=1,
    schema=pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),
            pa.field("round", pa.string(), nullable=False),
            pa.field("phase", pa.string(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("prompt_id", pa.string(), nullable=False),
            pa.field("prompt", pa.string(), nullable=False),
            pa.field("camera", pa.list_(pa.string()), nullable=False),
            pa.field("group_index", pa.int32(), nullable=False),
            pa.field("seed", pa.int64(), nullable=False),
            # Paths relative to the rollout directory.
            pa.field("video", pa.string()),
            pa.field("steps", pa.string()),
            pa.field("frames", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("fps", pa.int32(), nullable=False),
            pa.field("trained_steps", pa.list_(pa.int32()), nullable=False),
            # Sum over the trained steps of each step's log-prob (itself summed over dimensions).
            pa.field("log_prob_sum", pa.float64()),
            # The per-dimension average of the same, for logs: never for ratios.
            pa.field("log_prob_mean", pa.float64()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
        ]
    ),
    stage="rollout@<round>",
)


RECON = TableSchema(
    name="recon",
    version=2,  # v2: no per-sample wall seconds (they made every rerun's bytes differ)
    schema=pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),
            pa.field("round", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("frames", pa.int32()),
            # Paths relative to the recon directory.
            pa.field("geometry", pa.string()),
            pa.field("renders", pa.string()),
            pa.field("n_gaussians", pa.int64()),
            pa.field("gaussian_frames", pa.list_(pa.int32())),
            pa.field("confident_fraction", pa.float64()),
            pa.field("path_length", pa.float64()),
            pa.field("meta_index", pa.int32()),
        ]
    ),
    stage="reconstruct@<round>",
)


def _optional_floats(*names: str) -> list[pa.Field]:
    return [pa.field(n, pa.float64()) for n in names]


def rewards_schema(terms: Sequence[RewardTerm] = REWARD_TERMS, version: int = REWARDS_VERSION) -> TableSchema:
    """The rewards table of a registry of terms: each term's score, reason, raw metrics and weight."""
    return TableSchema(
        name="rewards",
        version=version,  # worldr1/rewards/terms.py, beside the terms whose columns it covers
        schema=pa.schema(
            [
                pa.field("sample_id", pa.string(), nullable=False),
                pa.field("round", pa.string(), nullable=False),
                pa.field("phase", pa.string(), nullable=False),
                pa.field("prompt_id", pa.string(), nullable=False),
                pa.field("prompt", pa.string(), nullable=False),
                pa.field("camera", pa.list_(pa.string()), nullable=False),
                pa.field("group_index", pa.int32(), nullable=False),
                # The terms, each in [0, 1], null when not computed (see status / the reason columns).
                *_optional_floats(*registry.names(terms)),
                *[pa.field(n, pa.string()) for n in registry.reason_columns(terms)],
                # Raw metrics behind them.
                *_optional_floats(*registry.metric_columns(terms), "motion", "motion_factor"),
                # The weight each term got in this sample's reward (0: off in this phase, or missing).
                *_optional_floats(*registry.weight_columns(terms)),
                *_optional_floats("reward", "group_mean", "group_std"),
                pa.field("group_valid", pa.int32()),
                pa.field("advantage", pa.float64()),
                pa.field("status", pa.string(), nullable=False),
                pa.field("error", pa.string()),
            ]
        ),
        stage="score@<round>",
    )


REWARDS = rewards_schema()


@dataclass(frozen=True)
class Provenance:
    """What made a table: stamped into its Parquet metadata for offline audit."""

    params_hash: str
    code_version: str
    models: dict[str, str]


def conform(table: pa.Table, spec: TableSchema) -> pa.Table:
    """`table` with exactly the columns and types of `spec` (ValueError when it cannot be)."""
    try:
        return table.select(spec.schema.names).cast(spec.schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise ValueError(f"table does not match schema {spec.name} v{spec.version}: {exc}") from exc


def write_table(url: str, table: pa.Table, spec: TableSchema, provenance: Provenance) -> None:
    table = conform(table, spec)
    meta = {
        "schema": spec.name,
        "schema_version": str(spec.version),
        "params_hash": provenance.params_hash,
        "code_version": provenance.code_version,
        "models": json.dumps(provenance.models, sort_keys=True),
    }
    table = table.replace_schema_metadata({f"{META_PREFIX}{k}": v for k, v in meta.items()})
    with atomic_open(url, "wb") as f:
        pq.write_table(table, f)


def read_table(url: str, spec: TableSchema) -> pa.Table:
    """Read a table written by `write_table`, refusing files of another schema or version."""
    stage = stage_of(spec, url)
    if not exists(url):
        raise UserError(f"{url} not found", f"produce it first: dvc repro {stage}")
    fs, path = filesystem(url)
    if fs.isdir(path):
        inside = f"{url.rstrip('/')}/{spec.name}.parquet"
        raise UserError(
            f"{url} is a directory, not a {spec.name} table",
            f"give {inside}" if exists(inside) else f"give the {spec.name} table's Parquet file",
        )
    try:
        # Arrow reads from memory, not from the Python file: its reader threads calling back into
        # Python could still be waiting for the GIL at interpreter exit, which unwinds them and
        # aborts the process ("terminate called without an active exception", apache/arrow#34314).
        with fsspec.open(url, "rb") as f:
            data = f.read()
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(
            f"{url} is not a readable Parquet file ({exc})", f"rerun its stage: dvc repro -f {stage}"
        ) from None
    meta = read_metadata_of(table)
    if "schema" not in meta:
        raise UserError(
            f"{url} is a Parquet file that worldr1 did not write (it has no worldr1.schema stamp)",
            f"give a {spec.name} table written by: dvc repro {stage}",
        )
    if meta["schema"] != spec.name:
        raise UserError(
            f"{url} holds worldr1's {meta['schema']} table, not its {spec.name} table",
            f"give the {spec.name} table that {stage} writes",
        )
    if meta.get("schema_version") != str(spec.version):
        raise UserError(
            f"{url} holds {spec.name} v{meta.get('schema_version', '?')}, this code reads {spec.name} v{spec.version}",
            f"rerun its stage with this code: dvc repro -f {stage}",
        )
    return table


def stage_of(spec: TableSchema, url: str) -> str:
    """The DVC stage that writes `url`: a per-round stage named for the round in its path."""
    parts = url.rstrip("/").split("/")
    if "<round>" in spec.stage and "rounds" in parts[:-1]:
        return spec.stage.replace("<round>", parts[parts.index("rounds") + 1])
    return spec.stage


def read_metadata_of(table: pa.Table) -> dict[str, str]:
    raw = table.schema.metadata or {}
    return {k.decode()[len(META_PREFIX) :]: v.decode() for k, v in raw.items() if k.decode().startswith(META_PREFIX)}


def code_version() -> str:
    """The package version, stamped into cached artifacts.

    Not the git commit: DVC hashes outputs, so a commit id inside a Parquet file would make every
    commit that touches a stage's code change its output even when the data is the same, and
    rerun everything downstream (hours of GPU for rollouts). The commit goes into the stage's
    uncached report instead (`git_version`).
    """
    return worldr1.__version__


@lru_cache(maxsize=1)
def git_version() -> str:
    """Package version plus the git commit of the checkout (`-dirty` for uncommitted code edits)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "worldr1", "stages"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return worldr1.__version__
    return f"{worldr1.__version__}+g{head}{'-dirty' if dirty else ''}"
