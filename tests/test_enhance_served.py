"""The enhancer against a real OpenAI-compatible HTTP server on 127.0.0.1, started by the test: valid
and invalid answers, slow and failing requests, the key, the concurrency limit, the per-line cache,
and the enhance stage under `dvc repro` feeding the prompts stage."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers import edit, ran, run, stage_error

from worldr1.enhance.cache import LineCache
from worldr1.enhance.check import Bounds
from worldr1.enhance.enhancer import Job, enhance
from worldr1.enhance.served import ServedChat
from worldr1.errors import UserError
from worldr1.prompts.camera import Primitive, parse_camera

KEY = "sk-test-5ecret-never-printed"
KEY_ENV = "WORLDR1_TEST_ENHANCE_KEY"
BOUNDS = Bounds(520, 740)
BODY = (
    "{plain} rendered in fine detail with weathered textures and honest materials, warm afternoon light, "
    "long soft shadows, drifting dust in the air and a calm, unhurried mood over everything. "
)


class Server:
    """Answers by the plain line's first word: `ok`, `retry` (wrong moves, then right once told why),
    `never` (names a camera move in its description), `slow` (first answer after the client's
    timeout), `flaky` (HTTP 503 first), `busy` (HTTP 429 with Retry-After first), `junk` (no
    choices). Counts requests per line and the most in flight at once."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: set[str] = set()
        self.last_auth = ""
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.delay = 0.0
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, word: str) -> int:
        return sum(self.plain(r).startswith(word) for r in self.requests)

    @staticmethod
    def plain(request: dict[str, Any]) -> str:
        return request["messages"][1]["content"].split("Scene: ", 1)[1]

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        plain = self.plain(request)
        camera = re.search(r"Camera sentence: (.*)\n", request["messages"][1]["content"])
        assert camera is not None
        kind, tries = plain.split()[0], self.count(plain.split()[0])
        good = f"{camera[1]} " + (BODY.format(plain=plain.capitalize()) * 3)[:600].rsplit(" ", 1)[0] + "."
        if kind == "retry" and len(request["messages"]) == 2:
            good = "Camera fixed. " + good.split(". ", 1)[1]
        if kind == "never":
            good = good[:-1] + ", while the camera pans left."
        if kind == "slow" and tries == 1:
            time.sleep(1.5)
        if kind == "flaky" and tries == 1:
            return 503, {}, {"error": {"message": "overloaded"}}
        if kind == "busy" and tries == 1:
            return 429, {"Retry-After": "0"}, {"error": {"message": "rate limited"}}
        if kind == "junk":
            return 200, {}, {"object": "chat.completion"}
        if kind == "long":  # this request's own problem; a careless server echoes the key
            return 400, {}, {"error": {"message": f"prompt too long for the key {self.last_auth}"}}
        return 200, {}, {"choices": [{"index": 0, "message": {"role": "assistant", "content": good}}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.last_auth = self.headers.get("Authorization", "")
                    server.auth.add(server.last_auth)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    status, headers, payload = (
                        server.answer(body)
                        if self.path == "/v1/chat/completions"
                        else (404, {}, {"error": {"message": f"no route {self.path}"}})
                    )
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat(url: str, key_env: str = KEY_ENV, concurrency: int = 4, **kw: Any) -> ServedChat:
    settings: dict[str, Any] = {
        "temperature": 0.9,
        "max_tokens": 260,
        "timeout_s": 0.5,
        "retries": 2,
        "backoff_s": 0.01,
    }
    return ServedChat(url, "test-model", key_env, concurrency=concurrency, **(settings | kw))


def jobs(*plain: str) -> list[Job]:
    moves = [(Primitive.ORBIT_LEFT, Primitive.PULL_OUT), (Primitive.PUSH_IN,), (Primitive.FIXED,)]
    return [Job("mine.txt", i + 1, text, moves[i % 3]) for i, text in enumerate(plain)]


def test_the_client_checks_retries_and_reports(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    lines = [
        "ok a red barn",
        "retry a lighthouse",
        "never a harbour",
        "slow a forest",
        "flaky a desert",
        "busy a city",
        "junk a lake",
        "long a field",
    ]
    result = enhance(jobs(*lines), chat(server.url), BOUNDS, 3, LineCache(), seed=0)
    by = {o.job.text.split()[0]: o for o in result.outcomes}
    for kind in ("ok", "retry", "slow", "flaky", "busy"):
        o = by[kind]
        assert o.status == "ok" and o.output is not None, (kind, o.reason)
        assert parse_camera(o.output).primitives == o.job.moves and 520 <= len(o.output) <= 740
    assert by["ok"].attempts == 1 and by["retry"].attempts == 2 and result.pass_at == {1: 4, 2: 1}
    told = [r for r in server.requests if server.plain(r).startswith("retry") and len(r["messages"]) == 4]
    assert "names fixed, but the moves must be exactly" in told[0]["messages"][3]["content"]
    assert (
        by["never"].status == "failed"
        and by["never"].attempts == 3
        and "names a camera move" in (by["never"].reason or "")
    )
    assert by["junk"].status == "failed" and "not a chat completion" in (by["junk"].reason or "")
    # A 4xx of one request fails that line alone, and the key it echoed is blanked out.
    assert by["long"].reason == "no answer: HTTP 400: prompt too long for the key Bearer ***"
    assert server.count("long") == 1
    # Transport problems are the client's retries, not the check's attempts.
    assert server.count("slow") == 2 and server.count("flaky") == 2 and server.count("busy") == 2
    assert server.auth == {f"Bearer {KEY}"}
    assert {r["model"] for r in server.requests} == {"test-model"} and all("seed" in r for r in server.requests)
    assert KEY not in repr(result)


def test_at_most_concurrency_requests_in_flight(server: Server) -> None:
    server.delay = 0.1
    run_ = enhance(
        jobs(*(f"ok scene {i}" for i in range(12))), chat(server.url, "", concurrency=3), BOUNDS, 1, LineCache(), 0
    )
    assert all(o.status == "ok" for o in run_.outcomes)
    assert server.max_in_flight == 3 and server.auth == {""}


def test_the_cache_makes_a_new_line_cost_one_call(server: Server) -> None:
    cache = LineCache()
    enhance(jobs("ok one", "ok two", "never three"), chat(server.url, ""), BOUNDS, 2, cache, 0)
    before = len(server.requests)
    again = enhance(jobs("ok one", "ok two", "never three", "ok four"), chat(server.url, ""), BOUNDS, 2, cache, 0)
    assert len(server.requests) - before == 1 == again.calls


def test_what_the_server_refuses_is_one_clear_error(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match=r"cannot reach the chat endpoint http://127.0.0.1:\d+/v1 \(connection failed"):
        enhance(jobs("ok a"), chat(f"http://127.0.0.1:{free_port()}/v1", ""), BOUNDS, 2, LineCache(), 0)
    with pytest.raises(
        UserError,
        match=r"/v2/chat/completions answered HTTP 404: no route /v2/chat/completions.*Fix: check prompts.enhance.url",
    ):
        enhance(jobs("ok a"), chat(server.url.replace("/v1", "/v2"), ""), BOUNDS, 2, LineCache(), 0)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UserError, match=f"the environment variable {KEY_ENV} .* is not set"):
        chat(server.url)
    monkeypatch.setenv(KEY_ENV, KEY + "\r")  # read from a file with Windows line ends: trimmed
    assert chat(server.url)._key == KEY
    monkeypatch.setenv(KEY_ENV, "two words")
    with pytest.raises(UserError, match=f"the key in {KEY_ENV} holds spaces") as refused:
        chat(server.url)
    assert "two words" not in str(refused.value)
    with pytest.raises(UserError, match="'localhost:8000/v1' is not an http"):
        chat("localhost:8000/v1", "")


def test_worldr1_enhance_prints_the_enhanced_prompt(server: Server) -> None:
    from typer.testing import CliRunner

    from worldr1.cli import app

    args = ["enhance", "ok a red barn", "--backend", "openai", "--url", server.url, "--model", "m"]
    result = CliRunner().invoke(app, [*args, "--moves", "orbit left, then pull out"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert printed.startswith("Camera orbit left, then pull out. Ok a red barn") and 520 <= len(printed) <= 740
    assert server.requests[-1]["model"] == "m"


def project_with_source(project: Path, url: str, lines: list[str]) -> None:
    (project / "data/sources/mine.txt").write_text("".join(f"{line}\n" for line in lines))
    edit(
        project,
        {
            "prompts.enhance.sources": [{"path": "data/sources/mine.txt", "split": "train"}],
            "prompts.enhance.backend": "openai",
            "prompts.enhance.model": "test-model",
            "prompts.enhance.url": url,
            "prompts.enhance.api_key_env": KEY_ENV,
            "prompts.enhance.retries": 1,
            "prompts.enhance.backoff_s": 0.01,
        },
    )


def test_dvc_repro_enhances_then_skips_then_asks_only_the_new_line(project: Path, server: Server) -> None:
    project_with_source(
        project, server.url, ["ok a red barn in a wheat field", "never a harbour at dawn", "ok a quiet library"]
    )
    env = {KEY_ENV: KEY}
    first = run(["dvc", "repro", "prompts"], project, env=env)
    assert ran(first.stdout) == {"enhance", "prompts"}
    enhanced = (project / "data/prompts/enhanced/mine.txt").read_text().splitlines()
    assert len(enhanced) == 2 and all(line.startswith("Camera ") for line in enhanced)
    table = pq.read_table(project / "data/prompts/enhanced/enhanced.parquet").to_pylist()
    assert [r["status"] for r in table] == ["ok", "failed", "ok"] and table[1]["attempts"] == 4
    report = json.loads((project / "reports/enhance.json").read_text())
    assert report["kept"] == 2 and report["failed"] == 1 and report["check_pass_rate"] == pytest.approx(2 / 3, abs=1e-4)
    prompts = pq.read_table(project / "data/prompts/prompts.parquet").to_pylist()
    mine = [r for r in prompts if r["source"] == "data/prompts/enhanced/mine.txt"]
    assert len(mine) == 2 and all(r["camera"] and r["split"] == "train" for r in mine)
    assert [r["camera"] for r in mine] == [r["camera"] for r in table if r["status"] == "ok"]

    asked = len(server.requests)
    assert ran(run(["dvc", "repro", "prompts"], project, env=env).stdout) == set()
    with (project / "data/sources/mine.txt").open("a") as f:
        f.write("ok a lighthouse on a cliff\n")
    third = run(["dvc", "repro", "prompts"], project, env=env)
    assert ran(third.stdout) == {"enhance", "prompts"} and len(server.requests) - asked == 1
    assert len((project / "data/prompts/enhanced/mine.txt").read_text().splitlines()) == 3
    for path in [*project.glob("data/prompts/**/*"), *project.glob("reports/*")]:
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path
    assert KEY not in first.stdout + first.stderr + third.stdout + third.stderr


def test_bad_enhance_inputs_are_one_line(project: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    project_with_source(project, f"http://127.0.0.1:{free_port()}/v1", ["ok a red barn"])
    monkeypatch.setenv(KEY_ENV, KEY)
    assert "cannot reach the chat endpoint" in stage_error(project, ["stages/enhance.py"])
    monkeypatch.delenv(KEY_ENV)
    assert f"the environment variable {KEY_ENV}" in stage_error(project, ["stages/enhance.py"])
    edit(project, {"prompts.enhance.backend": "local", "prompts.enhance.model": "./models/missing"})
    assert "model folder ./models/missing not found" in stage_error(project, ["stages/enhance.py"])
    (project / "data/sources/mine.txt").write_text("\n\n")
    assert "prompt file data/sources/mine.txt is empty" in stage_error(project, ["stages/enhance.py"])
    assert not (project / "data/prompts/enhanced").exists()
