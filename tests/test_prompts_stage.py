"""The `prompts` stage end to end: `dvc repro prompts` in a copy of the project, good and bad inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import ROOT, run
from ruamel.yaml import YAML

from worldr1 import config, store

OUT = Path("data/prompts/prompts.parquet")


def load_stage_params(name: str) -> list[str]:
    stages = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"]
    return stages[name]["params"]


def test_dvc_params_match_the_stage_script() -> None:
    sys.path.insert(0, str(ROOT / "stages"))
    try:
        import prompts as prompts_stage  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert load_stage_params("prompts") == prompts_stage.PARAMS


def test_dvc_repro_prompts_then_skips(project: Path) -> None:
    first = run(["dvc", "repro", "prompts"], project)
    assert "Running stage 'prompts'" in first.stdout
    table = pq.read_table(project / OUT)
    splits = table.column("split").to_pylist()
    assert splits.count("train") + splits.count("dynamic") >= 3000
    assert splits.count("test") == 300
    assert table.schema.names == store.PROMPTS.schema.names
    meta = store.read_metadata_of(table)
    params = config.load(project / "params.yaml")
    assert meta["params_hash"] == config.params_hash(params, load_stage_params("prompts"))
    assert meta["schema"] == "prompts" and meta["code_version"].startswith("0.1.0")
    report = json.loads((project / "reports/prompts.json").read_text())
    assert report["prompts"] == table.num_rows and report["camera_unparsed"] == 16
    assert report["code"].startswith("0.1.0")

    second = run(["dvc", "repro", "prompts"], project)
    assert "didn't change, skipping" in second.stdout
    assert "Running stage" not in second.stdout

    # A knob the stage does not read leaves it cached; one it reads reruns it.
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text.replace("lr: 1.0e-4", "lr: 2.0e-4"))
    assert "Running stage" not in run(["dvc", "repro", "prompts"], project).stdout
    (project / "params.yaml").write_text(text.replace("max_chars: 2000", "max_chars: 1500"))
    assert "Running stage 'prompts'" in run(["dvc", "repro", "prompts"], project).stdout


def test_generator_adds_prompts_through_params(project: Path) -> None:
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(
        text.replace("generator: {count: 0, split: train}", "generator: {count: 2000, split: train}")
    )
    run([sys.executable, "stages/prompts.py"], project)
    table = pq.read_table(project / OUT)
    assert table.num_rows == 3466 + 2000
    assert table.column("source").to_pylist().count("generator") == 2000


def edit_params(project: Path, old: str, new: str) -> None:
    path = project / "params.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda p: edit_params(p, "max_chars: 2000", "max_chars: lots"),
            "params.yaml: prompts.max_chars: input should be a valid integer",
        ),
        (
            lambda p: edit_params(p, "world-r1/test.txt", "world-r1/tset.txt"),
            "prompt file data/sources/world-r1/tset.txt not found",
        ),
        (
            lambda p: (p / "data/sources/world-r1/test.txt").write_bytes(b""),
            "prompt file data/sources/world-r1/test.txt is empty",
        ),
        (lambda p: (p / "data/sources/world-r1/test.txt").write_bytes(b"PK\x03\x04\x00\x00zip"), "is binary, not text"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(project: Path, setup, message: str) -> None:  # noqa: ANN001
    setup(project)
    direct = run([sys.executable, "stages/prompts.py"], project, check=False)
    assert direct.returncode == 2
    lines = direct.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], direct.stderr
    assert "Traceback" not in direct.stderr and "Fix:" in lines[0]
    assert not (project / OUT).exists()
    assert not (project / "reports/prompts.json").exists()
    repro = run(["dvc", "repro", "prompts"], project, check=False)
    assert repro.returncode != 0
    assert message in repro.stderr + repro.stdout
    # A bad params file stops the enhance stage, which runs first; a bad source file stops prompts.
    failing = "enhance" if message.startswith("params.yaml") else "prompts"
    assert f"Meanwhile `dvc checkout {failing}` brings back its last outputs" in repro.stderr
    assert not (project / OUT).exists()
