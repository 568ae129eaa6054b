"""Camera grammar: World-R1's camera sentences parse to the moves they name, and nothing else does."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldr1.prompts.camera import Primitive, camera_sentence, camera_sentence_for, parse_camera

WORLD_R1 = Path(__file__).resolve().parent.parent / "data" / "sources" / "world-r1"

# Every distinct camera sentence of World-R1's enhanced prompt set (train, dynamic, test), with
# the moves it names in order.
SENTENCES = [
    ("Camera fixed.", "fixed"),
    ("Camera move left, pull out, then pan left.", "move_left pull_out pan_left"),
    ("Camera move left, pull out, then pan right.", "move_left pull_out pan_right"),
    ("Camera move left, then orbit left.", "move_left orbit_left"),
    ("Camera move left, then orbit right.", "move_left orbit_right"),
    ("Camera move left, then pan left.", "move_left pan_left"),
    ("Camera move left, then pan right.", "move_left pan_right"),
    ("Camera move left, then pull out.", "move_left pull_out"),
    ("Camera move left, then push in.", "move_left push_in"),
    ("Camera move left, transitioning into a push in.", "move_left push_in"),
    ("Camera move left.", "move_left"),
    ("Camera move right, pull out, then pan right.", "move_right pull_out pan_right"),
    ("Camera move right, then orbit left.", "move_right orbit_left"),
    ("Camera move right, then orbit right.", "move_right orbit_right"),
    ("Camera move right, then pan left.", "move_right pan_left"),
    ("Camera move right, then pan right.", "move_right pan_right"),
    ("Camera move right, then pull out.", "move_right pull_out"),
    ("Camera move right, then push in.", "move_right push_in"),
    ("Camera move right.", "move_right"),
    ("Camera orbit left, then move right.", "orbit_left move_right"),
    ("Camera orbit left, then pan left.", "orbit_left pan_left"),
    ("Camera orbit left, then pan right.", "orbit_left pan_right"),
    ("Camera orbit left, then pull out.", "orbit_left pull_out"),
    ("Camera orbit left, then push in.", "orbit_left push_in"),
    ("Camera orbit left, transitioning into a pan right.", "orbit_left pan_right"),
    ("Camera orbit left, transitioning into a pull out.", "orbit_left pull_out"),
    ("Camera orbit left.", "orbit_left"),
    ("Camera orbit right, then pan left.", "orbit_right pan_left"),
    ("Camera orbit right, then pan right.", "orbit_right pan_right"),
    ("Camera orbit right, then pull out.", "orbit_right pull_out"),
    ("Camera orbit right, then push in.", "orbit_right push_in"),
    ("Camera orbit right, transitioning into a pull out.", "orbit_right pull_out"),
    ("Camera orbit right.", "orbit_right"),
    ("Camera pan left, then move left.", "pan_left move_left"),
    ("Camera pan left, then move right.", "pan_left move_right"),
    ("Camera pan left, then orbit left.", "pan_left orbit_left"),
    ("Camera pan left, then orbit right.", "pan_left orbit_right"),
    ("Camera pan left, then pull out.", "pan_left pull_out"),
    ("Camera pan left, then push in.", "pan_left push_in"),
    ("Camera pan left.", "pan_left"),
    ("Camera pan right, then move right.", "pan_right move_right"),
    ("Camera pan right, then orbit left.", "pan_right orbit_left"),
    ("Camera pan right, then orbit right.", "pan_right orbit_right"),
    ("Camera pan right, then pull out.", "pan_right pull_out"),
    ("Camera pan right, then push in slowly.", "pan_right push_in"),
    ("Camera pan right, then push in.", "pan_right push_in"),
    ("Camera pan right.", "pan_right"),
    ("Camera pull out, then move left.", "pull_out move_left"),
    ("Camera pull out, then move right.", "pull_out move_right"),
    ("Camera pull out, then orbit left.", "pull_out orbit_left"),
    ("Camera pull out, then orbit right.", "pull_out orbit_right"),
    ("Camera pull out, then pan left.", "pull_out pan_left"),
    ("Camera pull out, then pan right.", "pull_out pan_right"),
    ("Camera pull out.", "pull_out"),
    ("Camera push in, then fixed.", "push_in fixed"),
    ("Camera push in, then move left.", "push_in move_left"),
    ("Camera push in, then move right.", "push_in move_right"),
    ("Camera push in, then orbit left.", "push_in orbit_left"),
    ("Camera push in, then orbit right.", "push_in orbit_right"),
    ("Camera push in, then pan left.", "push_in pan_left"),
    ("Camera push in, then pan right.", "push_in pan_right"),
    ("Camera push in, then pull out.", "push_in pull_out"),
    ("Camera push in.", "push_in"),
]


def lines(split: str) -> list[str]:
    return [t for t in (WORLD_R1 / f"{split}.txt").read_text(encoding="utf-8").splitlines() if t.strip()]


@pytest.mark.parametrize(("sentence", "expected"), SENTENCES)
def test_world_r1_sentence(sentence: str, expected: str) -> None:
    parse = parse_camera(f"{sentence} A quiet harbour at dawn.")
    assert parse.ok, parse.reason
    assert [p.value for p in parse.primitives] == expected.split()


def test_table_covers_every_train_sentence() -> None:
    in_data = {camera_sentence(t) + "." for t in lines("train") if camera_sentence(t)}
    assert len(in_data) >= 60
    assert in_data <= {s for s, _ in SENTENCES}


def test_whole_enhanced_set_parses() -> None:
    prompts = [t for split in ("train", "dynamic", "test") for t in lines(split)]
    parsed = [parse_camera(t) for t in prompts]
    rate = sum(p.ok for p in parsed) / len(prompts)
    assert len(prompts) == 3466
    assert rate >= 0.995, rate
    # The ones that fail have no camera sentence at all, and say so.
    assert {p.reason.split(" (")[0] for p in parsed if not p.ok} == {"no camera sentence"}


@pytest.mark.parametrize(
    "prompt",
    [
        "A beach at low tide. The tide pulls out, and gulls move left across the sand.",
        "The water pulls out slowly while the boat pans left in the current.",
        "Cameras line the walls of a photo shop.",
    ],
)
def test_description_is_not_a_camera_move(prompt: str) -> None:
    parse = parse_camera(prompt)
    assert parse.primitives == ()
    assert parse.reason is not None and parse.reason.startswith("no camera sentence")


def test_only_the_first_sentence_is_parsed() -> None:
    parse = parse_camera("Camera orbit right. The tide pulls out as the boat moves left, then pans right.")
    assert parse.primitives == (Primitive.ORBIT_RIGHT,)
    assert parse.sentence == "Camera orbit right"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("The camera dollies in and then arcs left. A hall.", "push_in orbit_left"),
        ("Camera slowly pushes in.", "push_in"),
        ("Camera zooms in. A lake.", None),  # a zoom changes focal length, not position: reported, not guessed
        ("camera PAN LEFT, followed by a push in gently.", "pan_left push_in"),
        ("Camera trucks right; then stays still. A yard.", "move_right fixed"),
        ("Camera push in", "push_in"),
    ],
)
def test_other_wordings(prompt: str, expected: str | None) -> None:
    parse = parse_camera(prompt)
    if expected is None:
        assert not parse.ok and "unknown camera move" in (parse.reason or "")
    else:
        assert [p.value for p in parse.primitives] == expected.split(), parse.reason


@pytest.mark.parametrize(
    "prompt", ["Camera zoom in. A lake.", "Camera. A lake.", "Camera push in, then wobble. A lake."]
)
def test_unknown_move_keeps_a_reason(prompt: str) -> None:
    parse = parse_camera(prompt)
    assert parse.primitives == ()
    assert parse.sentence is not None
    assert parse.reason


@pytest.mark.parametrize(("sentence", "expected"), SENTENCES)
def test_sentence_for_round_trips(sentence: str, expected: str) -> None:
    moves = [Primitive(v) for v in expected.split()]
    assert parse_camera(camera_sentence_for(moves)).primitives == tuple(moves)
