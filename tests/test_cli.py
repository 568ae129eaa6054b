"""The `worldr1` command: doctor, prompts show, rounds add."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import BIN, ROOT, run

from worldr1 import config
from worldr1.errors import UserError
from worldr1.rounds import add_rounds, new_rounds, phase_of

WORLDR1 = str(BIN / "worldr1")


def test_doctor_reports_the_machine() -> None:
    proc = run([WORLDR1, "doctor"], ROOT)
    for expected in (
        "python",
        "torch",
        "device",
        "dvc",
        "gsplat",
        "params.yaml: valid",
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        "Qwen/Qwen3-VL-4B-Instruct",
        "xswu/HPSv2",
        "open-clip-torch",
    ):
        assert expected in proc.stdout, expected


def test_doctor_finds_a_local_model_folder(tmp_path: Path) -> None:
    model = tmp_path / "models" / "Qwen" / "Qwen3-VL-4B-Instruct"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    import os

    env_models = os.environ.get("WORLDR1_MODELS")
    os.environ["WORLDR1_MODELS"] = str(tmp_path / "models")
    try:
        from worldr1.weights import locate, require

        assert locate("Qwen/Qwen3-VL-4B-Instruct", "config.json") == model
        assert locate("Qwen/Qwen3-VL-4B-Instruct", "weights.bin") is None
        with pytest.raises(UserError, match="not found locally"):
            require("depth-anything/DA3-SMALL", "config.json")
    finally:
        if env_models is None:
            del os.environ["WORLDR1_MODELS"]
        else:
            os.environ["WORLDR1_MODELS"] = env_models


def test_prompts_show(project: Path) -> None:
    run([sys.executable, "stages/prompts.py"], project)
    all_rows = run([WORLDR1, "prompts", "show"], project).stdout
    assert "3466 prompts" in all_rows and "train" in all_rows and "orbit_left" in all_rows
    some = run(
        [WORLDR1, "prompts", "show", "--split", "test", "--camera", "orbit_left", "--limit", "3"], project
    ).stdout
    assert "orbit_left" in some and "first 3" in some and "dynamic" not in some
    none = run([WORLDR1, "prompts", "show", "--camera", "none"], project).stdout
    assert "16 prompts" in none and "no camera" in none


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prompts", "show", "--split", "val"], "unknown split 'val'"),
        (["prompts", "show", "--camera", "zoom_in"], "unknown camera move 'zoom_in'"),
        (["prompts", "show"], "data/prompts/prompts.parquet not found"),
        (["rounds", "add", "0"], "cannot add 0 rounds"),
        (["rounds", "add", "-1"], "worldr1 rounds add: No such option: -1 (a leading '-' makes it an option)"),
        (
            ["rounds", "ad", "1"],
            "worldr1 rounds: no such command 'ad' (did you mean 'add'?). Fix: see worldr1 rounds --help.",
        ),
        (
            ["sample", "--adapter", "params.yaml", "--out", "a.mp4", "x"],
            "--adapter params.yaml is a file, not an adapter folder",
        ),
        (["profile", "use", "wan3"], "unknown profile 'wan3'"),
    ],
)
def test_cli_user_errors(project: Path, args: list[str], message: str) -> None:
    proc = run([WORLDR1, *args], project, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rounds_add_keeps_comments_and_order(project: Path) -> None:
    path = project / "params.yaml"
    before = path.read_text()
    shipped = list(config.load(path).rounds)
    n = len(shipped)
    names = [f"r{i:03d}" for i in range(n, n + 3)]
    proc = run([WORLDR1, "rounds", "add", "3"], project)
    assert f"added {names[-1]}: prev={names[-2]}, phase=3d" in proc.stdout
    after = path.read_text()
    # Everything before the new items is byte for byte the same, comments included, except that
    # evaluate.policy follows the newest round.
    assert f"  policy: {names[-1]}\n" in after
    assert after.replace(f"  policy: {names[-1]}\n", f"  policy: {shipped[-1]}\n", 1).startswith(before.rstrip("\n"))
    assert after.endswith(
        "".join(f"  {name}: {{prev: {prev}, phase: 3d}}\n" for name, prev in zip(names, [shipped[-1], *names[:-1]]))
    )
    assert list(config.load(path).rounds) == [*shipped, *names]


def test_rounds_add_refuses_invalid_params_and_writes_nothing(project: Path) -> None:
    path = project / "params.yaml"
    path.write_text(path.read_text().replace("seed: 0", "seed: -3"))
    before = path.read_text()
    proc = run([WORLDR1, "rounds", "add", "1"], project, check=False)
    assert proc.returncode == 2 and "seed" in proc.stderr
    assert path.read_text() == before


def test_phases_follow_the_schedule(params_dict: dict[str, Any]) -> None:
    # 8 prompts x 4 samples / 4 per step = 8 steps a round: 100 steps -> 13 rounds of 3d, 50 -> 7 dynamic.
    params = config.validate(params_dict)
    assert params.steps_per_round == 8
    phases = [phase_of(i, params) for i in range(40)]
    assert phases[:13] == ["3d"] * 13 and phases[13:20] == ["dynamic"] * 7 and phases[20:33] == ["3d"] * 13
    params_dict["schedule"]["dynamic_steps"] = 0
    assert {phase_of(i, config.validate(params_dict)) for i in range(40)} == {"3d"}


def test_new_rounds_chain_from_base(params_dict: dict[str, Any]) -> None:
    params_dict["rounds"] = {}
    added = new_rounds(config.validate(params_dict), 2)
    assert added == [("r000", "base", "3d"), ("r001", "r000", "3d")]


def test_add_rounds_to_empty_rounds(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text()
    head = text[: text.index("rounds:")]
    path = tmp_path / "params.yaml"
    path.write_text(head + "rounds: {}\n")
    add_rounds(path, 2)
    assert list(config.load(path).rounds) == ["r000", "r001"]
    assert path.read_text().endswith("rounds:\n  r000: {prev: base, phase: 3d}\n  r001: {prev: r000, phase: 3d}\n")


def test_rounds_add_continues_after_a_gap(params_dict: dict[str, Any]) -> None:
    params_dict["rounds"] = {"r000": {"prev": "base", "phase": "3d"}, "r002": {"prev": "r000", "phase": "3d"}}
    params_dict["evaluate"]["policy"] = "r002"
    assert new_rounds(config.validate(params_dict), 1) == [("r003", "r002", "3d")]


def test_profile_use_switches_and_keeps_rounds(project: Path) -> None:
    path = project / "params.yaml"
    rounds = list(config.load(path).rounds)
    run([WORLDR1, "profile", "use", "toy"], project)
    toy = config.load(path)
    assert toy.policy.model == "toy" and toy.uses_toy and list(toy.rounds) == rounds
    assert toy.evaluate.policy == rounds[-1]
    run([WORLDR1, "profile", "use", "tiny"], project)
    assert config.load(path).policy.model == "tiny" and not config.load(path).uses_toy


def test_profile_use_on_a_broken_file_writes_nothing(project: Path) -> None:
    path = project / "params.yaml"
    path.write_text("rounds: [unclosed\n")
    proc = run([WORLDR1, "profile", "use", "toy"], project, check=False)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert path.read_text() == "rounds: [unclosed\n"
