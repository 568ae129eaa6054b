"""Artifact store: atomic writes (local and fsspec URLs), Parquet schemas with provenance."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from worldr1 import store
from worldr1.errors import UserError

PROV = store.Provenance(params_hash="abc123", code_version="0.1.0+gtest", models={"policy": "toy"})


class Boom(RuntimeError):
    pass


def test_atomic_write_survives_exception_midway(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    store.write_text(str(target), "old")
    with pytest.raises(Boom):
        with store.atomic_open(str(target), "wb") as f:
            f.write(b"new-and-partial")
            raise Boom
    assert target.read_text() == "old"
    assert sorted(os.listdir(target.parent)) == ["out.bin"]  # no temp file left behind


def test_atomic_write_never_leaves_partial_new_file(tmp_path: Path) -> None:
    target = tmp_path / "fresh.json"
    with pytest.raises(Boom):
        with store.atomic_open(str(target), "w") as f:
            f.write("{")
            raise Boom
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_write_replaces_read_only_dvc_link(tmp_path: Path) -> None:
    # DVC's link cache leaves outputs read-only; a rewrite must replace, not write through.
    cached = tmp_path / "cache-object"
    cached.write_text("cached")
    cached.chmod(0o444)
    target = tmp_path / "out.txt"
    os.link(cached, target)
    store.write_text(str(target), "new")
    assert target.read_text() == "new"
    assert cached.read_text() == "cached"


def test_atomic_write_on_fsspec_url() -> None:
    root = f"memory://worldr1-{uuid.uuid4().hex}"
    url = f"{root}/reports/x.json"
    store.write_json(url, {"a": 1})
    with pytest.raises(Boom):
        with store.atomic_open(url, "w") as f:
            f.write('{"a": 2')
            raise Boom
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(url).decode() == '{\n  "a": 1\n}\n'
    assert [Path(p).name for p in fs.ls(f"{root}/reports", detail=False)] == ["x.json"]  # no temp object left


def test_parquet_round_trip_with_provenance(tmp_path: Path) -> None:
    url = str(tmp_path / "prompts.parquet")
    table = pa.table(
        {
            "prompt_id": ["p1"],
            "split": ["train"],
            "text": ["Camera push in. A hall."],
            "camera": [["push_in"]],
            "camera_reason": [None],
            "source": ["a.txt"],
            "source_line": [1],
            "extra": [0],
        }
    )
    store.write_table(url, table, store.PROMPTS, PROV)
    back = store.read_table(url, store.PROMPTS)
    assert back.schema.names == store.PROMPTS.schema.names  # extra columns are not written
    assert back.column("camera").to_pylist() == [["push_in"]]
    meta = store.read_metadata_of(back)
    assert meta == {
        "schema": "prompts",
        "schema_version": "1",
        "params_hash": "abc123",
        "code_version": "0.1.0+gtest",
        "models": '{"policy": "toy"}',
    }


def test_parquet_on_fsspec_url() -> None:
    url = f"memory://worldr1-{uuid.uuid4().hex}/data/prompts/prompts.parquet"
    table = pa.table(
        {
            "prompt_id": ["p1"],
            "split": ["test"],
            "text": ["t"],
            "camera": [[]],
            "camera_reason": ["no camera sentence"],
            "source": ["s"],
            "source_line": [3],
        }
    )
    store.write_table(url, table, store.PROMPTS, PROV)
    assert store.read_table(url, store.PROMPTS).num_rows == 1


def test_table_missing_a_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match schema prompts v1"):
        store.write_table(str(tmp_path / "x.parquet"), pa.table({"prompt_id": ["p"]}), store.PROMPTS, PROV)
    assert not (tmp_path / "x.parquet").exists()


def test_reading_another_schema_is_a_user_error(tmp_path: Path) -> None:
    url = tmp_path / "old.parquet"
    pq.write_table(pa.table({"prompt_id": ["p"]}), url)
    with pytest.raises(UserError, match=r"Parquet file that worldr1 did not write"):
        store.read_table(str(url), store.PROMPTS)
    with pytest.raises(UserError, match="not found"):
        store.read_table(str(tmp_path / "missing.parquet"), store.PROMPTS)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        store.read_table(str(tmp_path / "junk.parquet"), store.PROMPTS)


def test_paths_follow_the_design() -> None:
    p = store.Paths("s3://bucket/project")
    assert p.prompts == "s3://bucket/project/data/prompts/prompts.parquet"
    assert p.rollout_dir("r003") == "s3://bucket/project/data/rounds/r003/rollout"
    assert p.recon_dir("r003").endswith("data/rounds/r003/recon")
    assert p.rewards("r003").endswith("data/rounds/r003/rewards.parquet")
    assert p.policy_dir("r003").endswith("data/rounds/r003/policy")
    assert p.round_report("r003").endswith("reports/rounds/r003.json")
    assert store.Paths().prompts == "./data/prompts/prompts.parquet"


def test_code_version_names_the_package() -> None:
    assert store.code_version() == "0.1.0"
    assert store.git_version().startswith("0.1.0")


def test_atomic_dir_replaces_whole_and_sweeps_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "rollout"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = str(store.temp_sibling(target)).replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-")
    Path(left).mkdir()  # left by a killed run
    with store.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(Boom):
        with store.atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("partial")
            raise Boom
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollout"]


def test_unknown_protocol_is_a_user_error() -> None:
    with pytest.raises(UserError, match="cannot open nope://x"):
        store.exists("nope://x/prompts.parquet")
