"""Plain prompts -> camera-first prompts: assign moves, ask, check, retry with the reason.

All lines that still need an answer are asked together, one attempt at a time, so a batched local
model and a concurrent endpoint both see whole batches. A line the cache answers costs nothing;
one that fails every attempt is reported and left out, never kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from worldr1.enhance.cache import Entry, LineCache, line_key
from worldr1.enhance.camera_mix import Moves
from worldr1.enhance.chat import ChatModel
from worldr1.enhance.check import Bounds, check, clean
from worldr1.enhance.instructions import Message, conversation, instructions_id, retry
from worldr1.ids import derive_seed
from worldr1.prompts.camera import camera_sentence_for


@dataclass(frozen=True)
class Job:
    """One plain line and the moves it was given."""

    source: str
    line: int
    text: str
    moves: Moves


@dataclass(frozen=True)
class Outcome:
    job: Job
    output: str | None
    attempts: int  # answers asked for in this run (0: from the cache)
    status: str  # ok | failed
    reason: str | None
    cached: bool


@dataclass
class _Pending:
    key: str
    job: Job
    messages: list[Message]
    answers: int = 0
    reason: str | None = None
    no_answer: bool = False  # the backend gave none: not cached, asked again next run


@dataclass
class Run:
    outcomes: list[Outcome]
    calls: int  # answers asked for
    pass_at: dict[int, int]  # answers kept at their 1st, 2nd... attempt


def enhance(
    jobs: Sequence[Job],
    chat: ChatModel,
    bounds: Bounds,
    attempts: int,
    cache: LineCache,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> Run:
    """Every job's outcome, in order. New answers (kept ones and lines that failed every check)
    go into `cache`."""
    instructions = instructions_id(bounds)
    done: dict[str, Outcome] = {}
    pending: dict[str, _Pending] = {}
    keys = [line_key(job.text, job.moves, chat.identity, instructions) for job in jobs]
    for job, key in zip(jobs, keys):
        hit = cache.usable(key, attempts)
        if hit is not None:
            done[key] = Outcome(job, hit.output, 0, hit.status, hit.reason, cached=True)
        elif key not in pending:  # the same plain line twice is asked once
            camera = camera_sentence_for(job.moves)
            pending[key] = _Pending(key, job, conversation(job.text, camera, bounds))
    hits = len(done)
    calls, total = 0, len(pending)
    pass_at: dict[int, int] = {}
    todo = list(pending.values())
    for attempt in range(1, attempts + 1):
        again = []
        for start in range(0, len(todo), max(1, chat.chunk)):
            chunk = todo[start : start + max(1, chat.chunk)]
            seeds = [derive_seed(seed, "enhance", p.key, attempt) for p in chunk]
            replies = chat.complete([p.messages for p in chunk], seeds)
            calls += len(chunk)
            for p, reply in zip(chunk, replies):
                p.answers = attempt
                if reply.text is None:
                    p.reason, p.no_answer = f"no answer: {reply.error}", True
                    continue
                text = clean(reply.text)
                reason = check(text, p.job.moves, bounds)
                if reason is None:
                    pass_at[attempt] = pass_at.get(attempt, 0) + 1
                    done[p.key] = Outcome(p.job, text, attempt, "ok", None, cached=False)
                    cache.put(_entry(p, text, "ok", None, chat.identity))
                    continue
                p.reason, p.messages = reason, retry(p.messages, text, reason)
                again.append(p)
            if attempt == attempts:  # a line out of attempts is settled now, not after the others
                for p in chunk:
                    if p.key not in done and not p.no_answer:
                        cache.put(_entry(p, None, "failed", p.reason, chat.identity))
            if progress is not None:
                progress(len(done) - hits, total)
        todo = again
        if not todo:
            break
    if progress is not None:
        progress(total, total)
    for p in pending.values():
        if p.key not in done:
            done[p.key] = Outcome(p.job, None, p.answers, "failed", p.reason, cached=False)
    outcomes = []
    for job, key in zip(jobs, keys):
        first = done[key]
        # A repeated line shares its first occurrence's answer and costs nothing more.
        same = Outcome(job, first.output, 0, first.status, first.reason, first.cached)
        outcomes.append(first if first.job == job else same)
    return Run(outcomes, calls, dict(sorted(pass_at.items())))


def _entry(p: _Pending, output: str | None, status: str, reason: str | None, model: str) -> Entry:
    moves = tuple(m.value for m in p.job.moves)
    return Entry(p.key, p.job.text, moves, model, output, p.answers, status, reason)
