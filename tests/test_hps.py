"""HPSv2.1 (`r_gen` on the Wan profiles): the real scoring code on open_clip's CLIP at tiny size, the
checkpoint loader, and one clear error when the weights are absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from worldr1.errors import UserError
from worldr1.rewards.hps import CHECKPOINT, REPO, HPSv21, pick_frame
from worldr1.rewards.quality import load_quality


@pytest.fixture(scope="module")
def hps() -> HPSv21:
    return HPSv21.tiny()


def video(seed: int = 0, frames: int = 6) -> np.ndarray:
    return (np.random.default_rng(seed).random((frames, 40, 56, 3)) * 255).astype(np.uint8)


def test_scores_one_seeded_frame_against_the_prompt(hps: HPSv21) -> None:
    v = video()
    score = hps.score(v, "Camera orbit left. A red barn.", seed=5)
    assert -1.0 <= score <= 1.0 and score != 0.0
    assert hps.score(v, "Camera orbit left. A red barn.", seed=5) == score  # the same frame again
    # Only the drawn frame counts, and which frame is drawn follows the seed.
    picked = pick_frame(len(v), 5)
    assert hps.score(v[picked : picked + 1], "Camera orbit left. A red barn.", seed=5) == pytest.approx(score, abs=1e-6)
    assert len({pick_frame(len(v), s) for s in range(40)}) == len(v)
    assert hps.score(v, "A grey wall.", seed=5) != pytest.approx(score, abs=1e-6)  # the prompt matters


def test_checkpoint_loads_with_hpsv2s_layout(tmp_path: Path, hps: HPSv21) -> None:
    # HPSv2 saves {"state_dict": ...} from a DistributedDataParallel model ("module." prefixes).
    path = tmp_path / CHECKPOINT
    torch.save({"state_dict": {f"module.{k}": v for k, v in hps.model.state_dict().items()}}, path)
    fresh = HPSv21.tiny()
    with torch.no_grad():
        for p in fresh.model.parameters():
            p.add_(1.0)
    loaded = HPSv21.from_checkpoint(path, fresh.model, fresh.preprocess, torch.device("cpu"))
    v = video(1)
    assert loaded.score(v, "a lighthouse", 3) == pytest.approx(hps.score(v, "a lighthouse", 3), abs=1e-6)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=f"could not load HPSv2.1 from .*{CHECKPOINT}"):
        HPSv21.from_checkpoint(path, fresh.model, fresh.preprocess, torch.device("cpu"))


def test_missing_weights_is_one_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDR1_MODELS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(UserError, match=rf"model {REPO} \({CHECKPOINT}\) not found locally") as err:
        load_quality("hpsv2.1")
    assert str(tmp_path / REPO) in str(err.value)
    # A folder without the checkpoint in it is not a copy of the weights either.
    (tmp_path / REPO).mkdir(parents=True)
    with pytest.raises(UserError, match="not found locally"):
        load_quality("hpsv2.1")
    assert load_quality("hpsv2.1-tiny").name == "hpsv2.1 (tiny random)"
    with pytest.raises(UserError, match="use sharpness, hpsv2.1 or hpsv2.1-tiny"):
        load_quality("hpsv3")


def test_the_wan_profiles_score_r_gen_with_hpsv2_1() -> None:
    from worldr1 import profiles

    for name in ("wan2.1-1.3b", "wan2.1-14b"):
        assert profiles.load(name)["reward"]["quality"] == "hpsv2.1"
