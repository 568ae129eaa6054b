"""The reconstruct stage under DVC: renders a person can open, a cache hit on rerun; then, on a copy
of the shared two-round project, bad videos and missing renders as rows. (That a forced rerun
rebuilds the same bytes, by one process or two, is tests/test_scale_out.py's.)"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
from helpers import Finished, copy_project, run
from PIL import Image

from worldr1 import store
from worldr1.video import read_mp4


def test_dvc_repro_reconstruct_and_bad_samples(two_rounds: Finished, tmp_path: Path) -> None:
    assert "Running stage 'reconstruct@r000'" in two_rounds.stdout
    project = copy_project(two_rounds.path, tmp_path / "project")
    recon = project / "data/rounds/r000/recon"
    table = pq.read_table(recon / "recon.parquet")
    assert table.num_rows == 4 and table.schema.names == store.RECON.schema.names
    assert store.read_metadata_of(table)["models"] == '{"reconstructor": "da3-small (random weights)"}'
    for row in table.to_pylist():
        if row["status"] != "ok":  # random weights may give degenerate cameras: then a reason, never a crash
            assert row["error"]
            continue
        renders = recon / row["renders"]
        assert read_mp4(renders / "input.mp4").shape == (9, 32, 32, 3)
        assert read_mp4(renders / "path.mp4").shape[1:] == (32, 32, 3)
        assert Image.open(renders / "meta.png").size == (32, 32)
    assert "Running stage" not in run(["dvc", "repro", "reconstruct@r000"], project).stdout

    # A missing render: the score stage marks that sample's row and completes.
    victim = next(r for r in table.to_pylist() if r["status"] == "ok")
    (recon / victim["renders"] / "input.mp4").unlink()
    proc = run([sys.executable, "stages/score.py", "r000"], project)
    assert "failed" in proc.stderr
    rows = {r["sample_id"]: r for r in pq.read_table(project / "data/rounds/r000/rewards.parquet").to_pylist()}
    assert rows[victim["sample_id"]]["status"] == "failed"
    assert "render files unreadable" in rows[victim["sample_id"]]["error"]
    assert math.isfinite(sum(r["reward"] for r in rows.values() if r["status"] == "ok"))

    # A corrupt video: the reconstruct stage fails that sample only.
    videos = sorted((project / "data/rounds/r000/rollout/videos").glob("*.mp4"))
    # DVC's cache links outputs read-only: replace the file rather than write into it.
    videos[0].unlink()
    videos[0].write_bytes(b"garbage, not an mp4")
    proc = run([sys.executable, "stages/reconstruct.py", "r000"], project)
    assert "1 failed" in proc.stderr
    rows = {r["sample_id"]: r for r in pq.read_table(project / "data/rounds/r000/recon/recon.parquet").to_pylist()}
    bad = rows[videos[0].stem]
    assert bad["status"] == "failed" and "unreadable video" in bad["error"]
    assert len(rows) == 4
