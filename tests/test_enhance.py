"""Prompt enhancement's pieces: the camera mix, the check, the instructions, the per-line cache and
the attempt loop, with a scripted chat model in this process (the real backends: test_enhance_served
and test_enhance_local)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from worldr1 import config
from worldr1.enhance.cache import LineCache
from worldr1.enhance.camera_mix import CameraMix
from worldr1.enhance.chat import Reply
from worldr1.enhance.check import Bounds, check, clean
from worldr1.enhance.enhancer import Job, enhance
from worldr1.enhance.instructions import Message, conversation, instructions_id
from worldr1.errors import UserError
from worldr1.prompts.camera import Primitive, moves_named_in

P = Primitive
BOUNDS = Bounds(120, 400)
SCENE = (
    "A red barn stands in a wide wheat field, its weathered boards glowing in warm evening light while "
    "swallows circle the roof and long shadows stretch across the golden grain."
)


def prompt(camera: str, body: str = SCENE) -> str:
    return f"{camera} {body}"


def test_the_shipped_mix_is_world_r1s_prefixes_weighted_by_its_train_set() -> None:
    mix = CameraMix.from_config(config.load().prompts.enhance.camera_mix)
    assert len(mix.moves) == 17 and sum(mix.weights) == 2026
    assert mix.shares()[(P.PUSH_IN,)] == pytest.approx(290 / 2026)
    assert (P.MOVE_LEFT, P.PULL_OUT, P.PAN_LEFT) in mix.moves


def test_moves_are_drawn_per_line_seeded_and_follow_the_weights() -> None:
    mix = CameraMix.from_config({"push in": 3.0, "orbit left, then pull out": 1.0})
    assert mix.draw(0, "a red barn") == mix.draw(0, "  a red   barn ")  # the line's text, not its place
    drawn = Counter(mix.draw(0, f"scene {i}") for i in range(2000))
    assert drawn[(P.PUSH_IN,)] / 2000 == pytest.approx(0.75, abs=0.03)
    assert drawn[(P.ORBIT_LEFT, P.PULL_OUT)] + drawn[(P.PUSH_IN,)] == 2000
    assert [mix.draw(1, f"scene {i}") for i in range(50)] != [mix.draw(0, f"scene {i}") for i in range(50)]


def test_a_mix_entry_the_grammar_cannot_parse_is_a_params_error() -> None:
    data = config.read_yaml(Path("params.yaml"))
    data["prompts"]["enhance"]["camera_mix"] = {"push in": 1, "zoom in": 2}
    with pytest.raises(UserError, match=r"prompts\.enhance\.camera_mix: .*'zoom in' is not a camera sentence"):
        config.validate(data)
    data["prompts"]["enhance"]["camera_mix"] = {"push in": 0}
    with pytest.raises(UserError, match=r"camera_mix\.push in: input should be greater than 0"):
        config.validate(data)


def test_enhance_sources_need_a_model_and_openai_a_url() -> None:
    data = config.read_yaml(Path("params.yaml"))
    data["prompts"]["enhance"]["sources"] = [{"path": "data/sources/mine.txt", "split": "train"}]
    with pytest.raises(UserError, match="model is empty"):
        config.validate(data)
    data["prompts"]["enhance"] |= {"model": "served-model", "backend": "openai"}
    with pytest.raises(UserError, match="backend openai needs url"):
        config.validate(data)
    data["prompts"]["enhance"]["url"] = "http://127.0.0.1:8000/v1"
    data["prompts"]["enhance"]["sources"].append({"path": "data/other/mine.txt", "split": "test"})
    with pytest.raises(UserError, match="would both write enhanced/mine.txt"):
        config.validate(data)


def test_moves_named_in_free_text() -> None:
    assert moves_named_in("A gull moves left, then the tide pulls out.") == [P.MOVE_LEFT, P.PULL_OUT]
    assert moves_named_in("the camera stays still over a static shot") == [P.FIXED, P.FIXED]
    # Everyday words are not moves: still water, a static charge, a panel, an orbital station.
    assert moves_named_in("still water, a static charge, a panel on the left, an orbital station") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (SCENE, "first sentence must be the camera sentence, but no camera sentence"),
        (prompt("Camera zoom in."), "unknown camera move 'zoom in'"),
        (prompt("Camera orbit right."), "names orbit right, but the moves must be exactly orbit left, pull out"),
        (prompt("Camera orbit left."), "names orbit left, but the moves must be exactly orbit left, pull out"),
        (
            prompt("Camera orbit left, then pull out.", SCENE + " Then we pan left to the silo."),
            "names a camera move (pan left)",
        ),
        (prompt("Camera orbit left, then pull out.", "Barn."), "no scene description"),
        (prompt("Camera orbit left, then pull out.", SCENE[:60]), "under the 120 asked for"),
        (prompt("Camera orbit left, then pull out.", SCENE * 3), "over the 400 allowed"),
    ],
)
def test_the_check_says_why(text: str, reason: str) -> None:
    got = check(text, (P.ORBIT_LEFT, P.PULL_OUT), BOUNDS)
    assert got is not None and reason in got


def test_the_check_passes_any_wording_of_the_same_moves() -> None:
    for camera in ("Camera orbit left, then pull out.", "The camera slowly arcs left and then pulls back."):
        assert check(prompt(camera), (P.ORBIT_LEFT, P.PULL_OUT), BOUNDS) is None


def test_clean_makes_one_line_without_wrapping_quotes() -> None:
    assert clean('  "Camera push in.\n\n A barn  in a field."  ') == "Camera push in. A barn in a field."
    assert clean("`Camera fixed. A pond.`") == "Camera fixed. A pond."


def test_the_instructions_carry_the_camera_sentence_and_the_bounds() -> None:
    system, user = conversation("a red barn", "Camera push in.", BOUNDS)
    assert "120 and 400 characters" in system["content"] and user["content"].startswith(
        "Camera sentence: Camera push in."
    )
    assert "Scene: a red barn" in user["content"]
    assert instructions_id(BOUNDS) != instructions_id(Bounds(120, 401))


class Scripted:
    """A chat model that answers from a script: per plain line, a list of answers in turn."""

    identity = "scripted"
    chunk = 2

    def __init__(self, script: dict[str, list[str | None]], dies_at_call: int = 0) -> None:
        self.script = script
        self.seen: list[list[Message]] = []
        self.calls, self.dies_at_call = 0, dies_at_call

    def complete(self, conversations: Sequence[list[Message]], seeds: Sequence[int]) -> list[Reply]:
        assert len(conversations) <= self.chunk
        self.calls += 1
        if self.calls == self.dies_at_call:
            raise KeyboardInterrupt
        replies = []
        for messages in conversations:
            self.seen.append(messages)
            first_user = next(m["content"] for m in messages if m["role"] == "user")
            plain = first_user.split("Scene: ", 1)[1]
            camera = re.search(r"Camera sentence: (.*)\n", first_user)
            assert camera is not None
            answers = self.script[plain]
            answer = answers[min(sum(m["role"] == "assistant" for m in messages), len(answers) - 1)]
            replies.append(Reply(None, "HTTP 503") if answer is None else Reply(answer.format(camera=camera[1])))
        return replies


def jobs(*plain: str) -> list[Job]:
    return [Job("src.txt", i + 1, text, (P.PUSH_IN,)) for i, text in enumerate(plain)]


def test_failed_answers_are_retried_with_the_reason_then_left_out() -> None:
    good = "{camera} " + SCENE
    chat = Scripted(
        {
            "first": [good],
            "second": ["Camera pan left. " + SCENE, good],
            "never": ["{camera} " + SCENE + " The camera pans left."],
            "down": [None],
        }
    )
    cache = LineCache()
    run = enhance(jobs("first", "second", "never", "down"), chat, BOUNDS, 3, cache, seed=0)
    by = {o.job.text: o for o in run.outcomes}
    assert by["first"].status == "ok" and by["first"].attempts == 1 and by["first"].output == "Camera push in. " + SCENE
    assert by["second"].status == "ok" and by["second"].attempts == 2
    retry = next(m for m in chat.seen if len(m) == 4 and "second" in m[1]["content"])
    assert retry[2] == {"role": "assistant", "content": "Camera pan left. " + SCENE}
    assert "names pan left, but the moves must be exactly push in" in retry[3]["content"]
    assert (
        by["never"].status == "failed"
        and by["never"].attempts == 3
        and "names a camera move" in (by["never"].reason or "")
    )
    assert by["down"].status == "failed" and by["down"].reason == "no answer: HTTP 503" and by["down"].attempts == 1
    assert run.calls == 1 + 2 + 3 + 1 and run.pass_at == {1: 1, 2: 1}
    # Kept answers and lines that failed the check are cached; a line that got no answer is not.
    assert sorted(e.input for e in cache.entries.values()) == ["first", "never", "second"]


def test_the_cache_answers_known_lines_and_more_attempts_retry_failures() -> None:
    good = "{camera} " + SCENE
    cache = LineCache()
    chat = Scripted({"a": [good], "b": [good], "bad": ["nope"], "new": [good]})
    enhance(jobs("a", "b", "bad"), chat, BOUNDS, 2, cache, seed=0)
    again = enhance(jobs("a", "b", "bad", "new"), chat, BOUNDS, 2, LineCache(cache.entries), seed=0)
    assert again.calls == 1 and [o.cached for o in again.outcomes] == [True, True, True, False]
    assert again.outcomes[2].status == "failed" and again.outcomes[2].attempts == 0
    more = enhance(jobs("a", "bad"), chat, BOUNDS, 3, LineCache(cache.entries), seed=0)
    assert more.calls == 3 and more.outcomes[0].cached  # `bad` had 2 tries: asked again, 3 times
    # Another model, or other instructions, is another key.
    other = Scripted(chat.script)
    other.identity = "other"
    assert enhance(jobs("a"), other, BOUNDS, 2, LineCache(cache.entries), seed=0).calls == 1
    assert enhance(jobs("a"), chat, Bounds(100, 400), 2, LineCache(cache.entries), seed=0).calls == 1


def test_a_line_twice_is_asked_once() -> None:
    chat = Scripted({"a": ["{camera} " + SCENE]})
    run = enhance([*jobs("a"), Job("other.txt", 7, "a", (P.PUSH_IN,))], chat, BOUNDS, 2, LineCache(), seed=0)
    assert run.calls == 1 and [o.status for o in run.outcomes] == ["ok", "ok"]
    assert run.outcomes[1].job.source == "other.txt" and run.outcomes[1].output == run.outcomes[0].output


def test_answers_of_finished_calls_are_cached_when_a_run_dies_halfway() -> None:
    good = "{camera} " + SCENE
    chat = Scripted({k: [good] for k in "abcde"}, dies_at_call=3)
    cache = LineCache()
    with pytest.raises(KeyboardInterrupt):
        enhance(jobs(*"abcde"), chat, BOUNDS, 2, cache, seed=0)
    assert sorted(e.input for e in cache.entries.values()) == ["a", "b", "c", "d"]
    resumed = enhance(jobs(*"abcde"), Scripted(chat.script), BOUNDS, 2, cache, seed=0)
    assert resumed.calls == 1 and [o.cached for o in resumed.outcomes] == [True] * 4 + [False]


def test_an_unreadable_cache_says_to_remove_it(tmp_path: Path) -> None:
    broken = tmp_path / "enhance-cache.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(UserError, match=r"not a readable Parquet file.*Fix: remove .*enhance-cache.parquet"):
        LineCache.read(str(broken))
    assert LineCache.read(str(tmp_path / "none.parquet")).entries == {}
