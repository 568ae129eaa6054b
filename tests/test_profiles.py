"""Profiles (worldr1/profiles): toy.yaml the complete base, the others overlays merged onto it by
`profile use`, values and comments; a key the base lacks, an unknown parent or a loop is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import ROOT

from worldr1 import config, profiles
from worldr1.errors import UserError
from worldr1.profiles import use_profile
from worldr1.rounds import to_plain

SHIPPED = Path(profiles.__file__).parent


def written(tmp_path: Path, name: str) -> tuple[str, config.Params]:
    """params.yaml after `profile use NAME` on the shipped one: its text and its validated params."""
    path = tmp_path / "params.yaml"
    shutil.copy2(ROOT / "params.yaml", path)
    use_profile(path, name)
    return path.read_text(), config.load(path)


def test_the_four_profiles_are_listed_and_each_merges_to_valid_params(tmp_path: Path) -> None:
    assert profiles.available() == ["tiny", "toy", "wan2.1-1.3b", "wan2.1-14b"]
    rounds = list(config.load(ROOT / "params.yaml").rounds)
    for name in profiles.available():
        text, params = written(tmp_path, name)
        assert list(params.rounds) == rounds and params.evaluate.policy == rounds[-1], name
        # The header names the profile written, and no other.
        header = text[: text.index("\nseed:")]
        assert f"Profile: {name} (" in header and header.count("Profile: ") == 1, name


def test_profile_use_toy_writes_the_shipped_params_byte_for_byte(tmp_path: Path) -> None:
    """The shipped params.yaml is the base profile as `profile use toy` writes it (rounds aside)."""
    text, _ = written(tmp_path, "toy")
    assert text == (ROOT / "params.yaml").read_text()


def test_overlays_are_short_and_hold_the_values_that_differ() -> None:
    for name in ("tiny", "wan2.1-1.3b", "wan2.1-14b"):
        text = (SHIPPED / f"{name}.yaml").read_text()
        assert "\nextends: " in text and len(text.splitlines()) < 80, name
    merged = {name: to_plain(profiles.load(name)) for name in profiles.available()}
    toy, tiny, small, big = merged["toy"], merged["tiny"], merged["wan2.1-1.3b"], merged["wan2.1-14b"]
    for wan in (small, big):
        assert wan["reward"]["quality"] == "hpsv2.1" and wan["reward"]["judge"] == "qwen3-vl-4b"
        assert wan["reward"]["weights"] == {"s_recon": 1.0, "s_reproj": 0.0, "s_traj": 1.0, "s_meta": 1.0, "r_gen": 1.0}
        assert wan["reconstruct"]["model"] == "da3-giant" and wan["reconstruct"]["backend"] == "da3"
        assert (wan["rollout"]["frames"], wan["rollout"]["height"], wan["rollout"]["width"]) == (81, 480, 832)
        assert wan["camera"] == {
            "push": 600.0,
            "move": 220.0,
            "pan_deg": 14.0,
            "orbit_deg": 24.0,
            "orbit_radius": 600.0,
        }
        assert wan["policy"]["lora"] == {"rank": 32, "alpha": 64.0, "targets": ["to_q", "to_k", "to_v", "to_out.0"]}
        assert len(wan["prompts"]["sources"]) == 3 and wan["prompts"]["toy"] == {"train": 0, "test": 0}
    assert (small["policy"]["model"], small["fsdp"]) == ("wan2.1-1.3b", False)
    assert (big["policy"]["model"], big["fsdp"]) == ("wan2.1-14b", True)
    # 14b is 1.3b but for its model and FSDP; tiny is 1.3b's recipe at toy sizes with random weights.
    assert {**big, "policy": small["policy"], "fsdp": False} == small
    assert tiny["policy"]["model"] == "tiny" and tiny["reward"]["quality"] == "hpsv2.1-tiny"
    assert (tiny["rollout"]["frames"], tiny["rollout"]["height"], tiny["rollout"]["shift"]) == (17, 64, 5.0)
    assert tiny["grpo"] == small["grpo"] and tiny["reward"]["weights"] == small["reward"]["weights"]
    # What no overlay sets is the base's.
    for other in (tiny, small, big):
        assert (
            other["toy"] == toy["toy"] and other["seed"] == toy["seed"] and other["grpo"]["ema"] == toy["grpo"]["ema"]
        )
    assert toy["policy"]["model"] == "toy" and toy["grpo"]["lr"] == 3.0e-4


def test_an_overlay_brings_its_comments_and_keeps_the_bases(tmp_path: Path) -> None:
    text, _ = written(tmp_path, "tiny")
    assert "  frames: 17             # 4k+1 (Wan's VAE); World-R1 uses 81\n" in text  # tiny's own
    assert "  clip: 1.0e-3           # World-R1's clip_range, on the per-dimension ratio\n" in text  # from 1.3b
    assert "  dtype: auto            # bfloat16 on cuda, float32 on cpu\n" in text  # the base's, untouched
    # The base's comments on values an overlay changed go with the values.
    assert "s_traj at 0.5" not in text and "0.02 still zeroes frozen videos" not in text
    assert "the toy world has no dynamic prompts" not in text
    assert "# One item per round; `worldr1 rounds add N` appends more with the right prev and phase.\nrounds:\n" in text
    small, _ = written(tmp_path, "wan2.1-1.3b")
    big, _ = written(tmp_path, "wan2.1-14b")
    assert "28 GB of bf16 weights" in big and "28 GB" not in small


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile folder holding the shipped base, for overlays of the test's own."""
    shutil.copy2(SHIPPED / "toy.yaml", tmp_path / "toy.yaml")
    monkeypatch.setattr(profiles, "folder", lambda: tmp_path)
    return tmp_path


def test_nested_mappings_merge_key_by_key_and_lists_replace(folder: Path) -> None:
    (folder / "mine.yaml").write_text(
        "# Profile: mine (a test's).\n\nextends: toy\n\n"
        "reward:\n  weights: {s_traj: 0.25}\npolicy:\n  lora: {targets: [to_q]}\n"
    )
    mine = to_plain(profiles.load("mine"))
    assert mine["reward"]["weights"] == {"s_recon": 1.0, "s_reproj": 4.0, "s_traj": 0.25, "s_meta": 0.0, "r_gen": 0.5}
    assert mine["policy"]["lora"] == {"rank": 16, "alpha": 32.0, "targets": ["to_q"]}
    assert profiles.profile_text("mine").startswith(
        "# worldr1 params: every knob of the pipeline, validated on load (worldr1/config.py).\n"
        "# DVC reruns a stage when a key it lists under `params:` in dvc.yaml changes, so nothing\n"
        "# here has a hidden default in code.\n# Profile: mine (a test's).\n# Switch with"
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"mine": "extends: toy\nreward:\n  wieghts: {s_traj: 1.0}\n"},
            "profile mine sets reward.wieghts, which is no param of the base profile toy. "
            "Fix: correct the key, or add the param to toy.yaml first.",
        ),
        (
            {"mine": "extends: tiny\nseed: 1\n"},
            "profile mine extends unknown profile 'tiny'. Fix: extend one of mine, toy.",
        ),
        (
            {"mine": "extends: other\nseed: 1\n", "other": "extends: mine\nseed: 2\n"},
            "profile other extends mine, a loop: mine -> other -> mine. Fix: end the chain at a complete profile (toy).",
        ),
        ({"mine": "extends: mine\nseed: 1\n"}, "profile mine extends mine, a loop: mine -> mine."),
    ],
)
def test_a_bad_overlay_is_one_line(folder: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    with pytest.raises(UserError) as error:
        use_profile(folder / "params.yaml", "mine")
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1
    assert not (folder / "params.yaml").exists()
