"""Offline audit of rewards files: summaries, comparison, and clear errors for bad files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import BIN, ROOT, run

from worldr1 import audit, store
from worldr1.errors import UserError

WORLDR1 = str(BIN / "worldr1")


def rewards_file(path: Path, rewards: list[float | None], round_name: str = "r000") -> Path:
    rows = []
    for i, r in enumerate(rewards):
        row = {name: None for name in store.REWARDS.schema.names}
        row.update(
            sample_id=f"{round_name}-p{i // 2}-{i % 2:03d}",
            round=round_name,
            phase="3d",
            prompt_id=f"p{i // 2}",
            prompt=f"Camera orbit left. Scene {i}.",
            camera=["orbit_left"] if i % 3 else [],
            group_index=i % 2,
            status="ok" if r is not None else "failed",
            error=None if r is not None else "reconstruction failed: x",
            reward=r,
            s_recon=None if r is None else r / 2,
            s_traj=None if r is None else r / 4,
        )
        rows.append(row)
    store.write_table(
        str(path),
        pa.Table.from_pylist(rows, schema=store.REWARDS.schema),
        store.REWARDS,
        store.Provenance("h", "0.1.0", {}),
    )
    return path


def test_load_stats_and_ranking(tmp_path: Path) -> None:
    rewards_file(tmp_path / "a.parquet", [1.0, 2.0, None, 3.0])
    table = audit.load([str(tmp_path / "*.parquet")])
    rows = audit.ok_rows(table)
    assert len(rows) == 3
    stats = audit.per_term(rows)
    assert stats["reward"].mean == pytest.approx(2.0) and stats["reward"].hi == 3.0 and stats["s_recon"].n == 3
    best, worst = audit.ranked(rows, 1)
    assert best[0]["reward"] == 3.0 and worst[0]["reward"] == 1.0
    groups = audit.by_key(rows, lambda r: r["camera"] or ["(none)"])
    assert set(groups) == {"orbit_left", "(none)"}


def test_bad_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no file matches"):
        audit.load([str(tmp_path / "*.parquet")])
    old = tmp_path / "old.parquet"
    pq.write_table(pa.table({"sample_id": ["x"]}), old)
    with pytest.raises(UserError, match=r"Parquet file that worldr1 did not write") as info:
        audit.load([str(old)])
    assert "dvc repro score@<round>" in info.value.fix
    with pytest.raises(UserError, match="is a directory, not a rewards table") as info:
        audit.load([str(tmp_path)])
    assert info.value.fix == "give the rewards table's Parquet file"
    # A rewards file of an older schema version, as an earlier release wrote it.
    older = tmp_path / "older.parquet"
    store.write_table(
        str(older),
        pa.table({"sample_id": ["x"]}),
        dataclasses.replace(store.REWARDS, version=0, schema=pa.schema([("sample_id", pa.string())])),
        store.Provenance("h", "0.0.9", {}),
    )
    with pytest.raises(UserError, match=r"holds rewards v0, this code reads rewards v2"):
        audit.load([str(older)])
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        audit.load([str(tmp_path / "junk.parquet")])
    # Another worldr1 table, in a round's directory: named as such, and its fix names the round.
    r000 = tmp_path / "data" / "rounds" / "r000"
    store.write_table(
        str(r000 / "rollout" / "samples.parquet"),
        pa.table({"sample_id": ["x"]}),
        dataclasses.replace(store.SAMPLES, schema=pa.schema([("sample_id", pa.string())])),
        store.Provenance("h", "0.0.9", {}),
    )
    with pytest.raises(UserError, match="holds worldr1's samples table, not its rewards table") as info:
        audit.load([str(r000 / "rollout" / "samples.parquet")])
    assert info.value.fix == "give the rewards table that score@r000 writes"
    with pytest.raises(UserError, match="not found") as info:
        audit.load([str(r000 / "rewards.parquet")])
    assert info.value.fix == "produce it first: dvc repro score@r000"


def test_audit_cli(tmp_path: Path) -> None:
    a = rewards_file(tmp_path / "a.parquet", [1.0, 2.0, None, 3.0])
    b = rewards_file(tmp_path / "b.parquet", [2.0, 3.0, 4.0, 5.0], "r001")
    shown = run([WORLDR1, "audit", str(a), str(b), "--top", "2"], ROOT).stdout
    assert "8 samples, 1 failed" in shown and "by camera move" in shown and "reconstruction failed" in shown
    compared = run([WORLDR1, "audit", "--compare", str(a), str(b)], ROOT).stdout
    assert "1.500" in compared  # B - A of the mean reward: 3.5 - 2.0
    bad = run([WORLDR1, "audit", str(tmp_path / "missing.parquet")], ROOT, check=False)
    assert bad.returncode == 2 and "missing.parquet not found" in bad.stderr


def test_audit_reads_fsspec_urls(tmp_path: Path) -> None:
    """Rewards straight from a store: a memory:// URL (in this process: the memory filesystem is
    per process) with the HTML report finding the round's files there too, and a file:// URL."""
    import uuid

    import fsspec
    from typer.testing import CliRunner

    from worldr1.cli import app

    local = rewards_file(tmp_path / "rewards.parquet", [1.0, 2.0, None, 3.0])
    url = f"memory://worldr1-audit-{uuid.uuid4().hex}/data/rounds/r000/rewards.parquet"
    with fsspec.open(url, "wb") as f:
        f.write(local.read_bytes())
    shown = CliRunner().invoke(app, ["audit", url, "--html", str(tmp_path / "report.html")])
    assert shown.exit_code == 0, shown.output
    assert "4 samples, 1 failed" in shown.output and "by camera move" in shown.output
    page = (tmp_path / "report.html").read_text()
    assert url in page and url.replace("rewards.parquet", "rollout/samples.parquet not found") in page  # cards say so
    missing = CliRunner().invoke(app, ["audit", url.replace("r000", "r009")])
    assert isinstance(missing.exception, UserError) and "r009/rewards.parquet not found" in str(missing.exception)
    by_url = run([WORLDR1, "audit", f"file://{local}"], ROOT).stdout
    assert "4 samples, 1 failed" in by_url
