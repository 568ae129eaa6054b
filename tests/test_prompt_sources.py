"""Prompt files, the template generator and the prompts table built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worldr1 import config
from worldr1.errors import UserError
from worldr1.ids import prompt_id
from worldr1.prompts import build_prompt_set, parse_camera
from worldr1.prompts.generator import capacity, generate_prompts
from worldr1.prompts.sources import read_prompt_file


def test_reads_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_bytes(
        "\ufeffCamera push in. A hall.\n\n   \nCamera pan left.  A   café.\r\n".encode()
        + b"Camera fixed. \xff\xfe broken\n"
        + ("Camera orbit left. " + "x" * 100 + "\n").encode()
        + b"last line without newline"
    )
    prompts, skipped = read_prompt_file(str(f), max_chars=60)
    assert [(p.text, p.line) for p in prompts] == [
        ("Camera push in. A hall.", 1),
        ("Camera pan left. A café.", 4),
        ("last line without newline", 7),
    ]
    assert [(s.line, s.reason.split(" ")[0]) for s in skipped] == [(5, "not"), (6, "119")]
    assert "not UTF-8" in skipped[0].reason and "prompts.max_chars=60" in skipped[1].reason


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"\n  \n\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary, not text"),
        (b"\xff\xfe\xfd\n\xc3\x28\n", "has no usable prompt (2 lines skipped, e.g. line 1: not UTF-8"),
    ],
)
def test_bad_file_is_one_user_error(tmp_path: Path, content: bytes | None, message: str) -> None:
    f = tmp_path / "p.txt"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_prompt_file(str(f), max_chars=100)
    assert message in info.value.line()
    assert str(f) in info.value.line()


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        read_prompt_file(str(tmp_path), max_chars=100)


def test_generator_is_deterministic_distinct_and_parses() -> None:
    a = generate_prompts(500, seed=7)
    assert a == generate_prompts(500, seed=7)
    assert [g.text for g in a] != [g.text for g in generate_prompts(500, seed=8)]
    assert len({g.text for g in a}) == 500
    for g in a:
        parse = parse_camera(g.text)
        assert parse.primitives == g.moves, g.text
    # All kinds of camera sentence show up: singles, pairs and World-R1's triples.
    assert {len(g.moves) for g in a} == {1, 2, 3}


def test_generator_makes_thousands() -> None:
    made = generate_prompts(5000, seed=0)
    assert len({prompt_id(g.text) for g in made}) == 5000


def test_generator_refuses_more_than_it_can_make_distinct() -> None:
    with pytest.raises(UserError, match="prompts.generator.count"):
        generate_prompts(capacity(), seed=0)


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def cfg(params_dict: dict[str, Any], sources: list[dict[str, str]], generated: int = 0) -> config.PromptsConfig:
    params_dict["prompts"]["sources"] = sources
    params_dict["prompts"]["generator"]["count"] = generated
    return config.validate(params_dict).prompts


def test_build_dedupes_and_keeps_held_out_prompts_held_out(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    train = write(
        tmp_path / "train.txt",
        [
            "Camera push in. A hall.",
            "Camera  push in.  A hall.",
            "A lake at dawn.",
            "Camera pan left. A shared prompt.",
        ],
    )
    test = write(tmp_path / "test.txt", ["Camera pan left. A shared prompt."])
    built = build_prompt_set(cfg(params_dict, [{"path": train, "split": "train"}, {"path": test, "split": "test"}]), 0)
    rows = built.table.to_pylist()
    assert [(r["split"], r["text"]) for r in rows] == [
        ("train", "Camera push in. A hall."),
        ("train", "A lake at dawn."),
        ("test", "Camera pan left. A shared prompt."),
    ]
    assert built.duplicates == 2
    assert rows[1]["camera"] == [] and rows[1]["camera_reason"].startswith("no camera sentence")
    assert rows[2]["source"] == test and rows[2]["source_line"] == 1
    assert rows[0]["prompt_id"] == prompt_id("Camera push in. A hall.")
    report = built.report()
    assert report["by_split"] == {"train": 2, "dynamic": 0, "test": 1}
    assert report["camera_unparsed"] == 1 and report["camera_unparsed_by_reason"] == {"no camera sentence": 1}


def test_build_with_generator_only(params_dict: dict[str, Any]) -> None:
    built = build_prompt_set(cfg(params_dict, [], generated=300), seed=3)
    assert built.table.num_rows == 300
    assert set(built.table.column("source").to_pylist()) == {"generator"}
    assert built.table.column("source_line").to_pylist() == list(range(300))
    assert built.report()["camera_parsed"] == 300
    again = build_prompt_set(cfg(params_dict, [], generated=300), seed=3)
    assert again.table.equals(built.table)


def test_toy_prompts_come_from_the_callers_writer(params_dict: dict[str, Any]) -> None:
    params_dict["prompts"]["toy"] = {"train": 3, "test": 1}
    toy = cfg(params_dict, [])
    with pytest.raises(ValueError, match="pass toy_prompt"):
        build_prompt_set(toy, seed=0)
    built = build_prompt_set(toy, seed=0, toy_prompt=lambda scene: f"Camera pan left. Scene {scene}.")
    rows = built.table.to_pylist()
    assert [r["split"] for r in rows] == ["train"] * 3 + ["test"]
    assert {r["source"] for r in rows} == {"toy"} and all(r["camera"] == ["pan_left"] for r in rows)
