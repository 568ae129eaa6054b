"""`worldr1 audit --html`: one self-contained page with histograms and sample cards carrying their media."""

from __future__ import annotations

import base64
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
from helpers import BIN, ROOT, run
from PIL import Image

from worldr1 import store
from worldr1.audit.html import write_html
from worldr1.rewards.combine import TERMS
from worldr1.video import write_mp4

WORLDR1 = str(BIN / "worldr1")
PROV = store.Provenance("h", "0.1.0", {})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "Camera push in. A <script>alert('x')</script> & a <b>bold</b> fox."


class Page(HTMLParser):
    """What the tests look at: histograms, media sources, cards and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.histograms: set[str] = set()
        self.sources: list[tuple[str, str]] = []  # (tag, src)
        self.cards: list[dict[str, str]] = []  # data-kind, data-sample, text
        self.text: list[str] = []
        self.scripts = 0
        self._depth = 0  # nesting inside the current card's <section>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and "data-term" in a:
            self.histograms.add(a["data-term"])
        if "src" in a:
            self.sources.append((tag, a["src"]))
        if tag == "script":
            self.scripts += 1
        if tag == "section" and "data-sample" in a:
            self.cards.append({"kind": a["data-kind"], "sample": a["data-sample"], "text": ""})
            self._depth = 1
        elif tag == "section" and self._depth:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._depth:
            self.cards[-1]["text"] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def sid(i: int) -> str:
    return f"r000-p{i}-000"


def make_round(root: Path, rewards: list[float | None], media: bool = True) -> Path:
    """A round directory: rewards.parquet and, with `media`, rollout/ and recon/ with their tables and files.

    Sample 2 (when present) has a recon row whose renders are not on disk; failed samples have
    no reconstruction, with its error in recon.parquet.
    """
    rows, samples, recons = [], [], []
    for i, r in enumerate(rewards):
        row = {name: None for name in store.REWARDS.schema.names}
        ok = r is not None
        row.update(
            sample_id=sid(i),
            round="r000",
            phase="3d" if i % 2 == 0 else "dynamic",
            prompt_id=f"p{i}",
            prompt=EVIL if i == 1 else f"Camera orbit left. Scene {i}.",
            camera=["orbit_left"] if i % 2 else [],
            group_index=0,
            status="ok" if ok else "failed",
            error=None if ok else "reconstruction failed: too few <cameras>",
            reward=r,
            advantage=None if not ok else r - 1,
            psnr=None if not ok else 20.0 + i,
            **{t: None if not ok else min(1.0, r / (k + 2)) for k, t in enumerate(TERMS)},
            **{f"w_{t}": 1.0 for t in TERMS},
        )
        rows.append(row)
        samples.append(
            {
                "sample_id": sid(i),
                "round": "r000",
                "phase": "3d",
                "split": "train",
                "prompt_id": f"p{i}",
                "prompt": row["prompt"],
                "camera": row["camera"],
                "group_index": 0,
                "seed": i,
                "video": f"videos/{sid(i)}.mp4",
                "steps": None,
                "frames": 4,
                "height": 16,
                "width": 16,
                "fps": 8,
                "trained_steps": [],
                "log_prob_sum": None,
                "log_prob_mean": None,
                "status": "ok",
                "error": None,
            }
        )
        recons.append(
            {
                "sample_id": sid(i),
                "round": "r000",
                "status": "ok" if ok else "failed",
                "error": None if ok else "reconstruction failed: too few <cameras>",
                "renders": f"renders/{sid(i)}" if ok else None,
            }
        )
    store.write_table(
        str(root / "rewards.parquet"), pa.Table.from_pylist(rows, schema=store.REWARDS.schema), store.REWARDS, PROV
    )
    if media:
        rollout, recon = root / "rollout", root / "recon"
        clip = root / "clip.mp4"
        frames = np.zeros((4, 16, 16, 3), np.uint8)
        frames[:, :, :, 0] = np.arange(4, dtype=np.uint8)[:, None, None] * 60
        write_mp4(clip, frames, 8)
        (rollout / "videos").mkdir(parents=True)
        for i in range(len(rewards)):
            shutil.copy(clip, rollout / "videos" / f"{sid(i)}.mp4")
            if rewards[i] is None or i == 2:
                continue
            renders = recon / "renders" / sid(i)
            renders.mkdir(parents=True)
            shutil.copy(clip, renders / "input.mp4")
            shutil.copy(clip, renders / "path.mp4")
            Image.fromarray(frames[1]).save(renders / "meta.png")
        full = [{name: None for name in store.RECON.schema.names} | r for r in recons]
        store.write_table(
            str(rollout / "samples.parquet"),
            pa.Table.from_pylist(samples, schema=store.SAMPLES.schema),
            store.SAMPLES,
            PROV,
        )
        store.write_table(
            str(recon / "recon.parquet"), pa.Table.from_pylist(full, schema=store.RECON.schema), store.RECON, PROV
        )
    return root / "rewards.parquet"


def decoded(src: str) -> tuple[str, bytes]:
    head, data = src.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64"), head
    return head[5:-7], base64.b64decode(data, validate=True)


def test_report_has_histograms_media_and_escaped_text(tmp_path: Path) -> None:
    rewards = make_round(tmp_path / "r000", [0.5, 2.0, 1.0, None, 0.2])
    out = tmp_path / "report.html"
    written = write_html([str(rewards)], str(out), cards=2)
    raw = out.read_text(encoding="utf-8")
    page = parse(out)
    assert written.size == len(raw.encode("utf-8")) and written.cards == len(page.cards) == 5

    assert set(TERMS) | {"reward"} <= page.histograms
    assert "http://" not in raw and "https://" not in raw and page.scripts == 0
    assert page.sources and all(src.startswith("data:") for _, src in page.sources)
    for tag, src in page.sources:
        mime, data = decoded(src)
        if tag == "video":
            assert mime == "video/mp4" and data[4:8] == b"ftyp"
        else:
            assert tag == "img" and mime == "image/png" and data.startswith(PNG_SIGNATURE)
    # Samples 0, 1 and 4 have all four media; sample 2 and the failed 3 only their generated video.
    assert sum(tag == "video" for tag, _ in page.sources) == 3 * 3 + 2
    assert sum(tag == "img" for tag, _ in page.sources) == 3

    # The prompt is text on the page, never markup.
    assert "<script>" not in raw and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in raw
    assert EVIL in "".join(page.text)

    kinds = [(c["kind"], c["sample"]) for c in page.cards]
    assert kinds == [("best", sid(1)), ("best", sid(2)), ("worst", sid(4)), ("worst", sid(0)), ("failed", sid(3))]
    by_sample = {c["sample"]: c["text"] for c in page.cards}
    assert "2.000" in by_sample[sid(1)]  # reward, three decimals
    assert "input cameras not embedded: not found:" in by_sample[sid(2)]
    assert "meta view not embedded: not found:" in by_sample[sid(2)]
    assert "reconstruction failed: too few <cameras>" in by_sample[sid(3)]
    header = " ".join(" ".join(page.text).split())
    assert "5 samples" in header and "1 failed" in header and "3 phase 3d" in header
    assert "2 (1 failed) phase dynamic" in header


def test_report_without_round_directory_says_so(tmp_path: Path) -> None:
    rewards = make_round(tmp_path, [1.0, 3.0], media=False)
    out = tmp_path / "deep" / "report.html"
    written = write_html([str(rewards)], str(out), cards=4)
    page = parse(out)
    assert written.cards == 2 and written.missing_media == 8 and page.sources == []
    assert [c["sample"] for c in page.cards] == [sid(1), sid(0)]
    for c in page.cards:
        assert "generated not embedded:" in c["text"] and "samples.parquet not found" in c["text"]
        assert "recon.parquet not found" in c["text"]
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_audit_cli_html(tmp_path: Path) -> None:
    rewards = make_round(tmp_path / "r000", [0.5, 2.0, None])
    out = tmp_path / "a.html"
    done = run([WORLDR1, "audit", str(rewards), "--html", str(out), "--cards", "1"], ROOT)
    assert f"wrote {out}" in done.stderr and "3 cards" in done.stderr and "3 samples, 1 failed" in done.stdout
    assert [c["kind"] for c in parse(out).cards] == ["best", "worst", "failed"]
    bad = run([WORLDR1, "audit", "--compare", str(rewards), str(rewards), "--html", str(out)], ROOT, check=False)
    assert bad.returncode == 2 and "--html reports files, not a --compare" in bad.stderr
