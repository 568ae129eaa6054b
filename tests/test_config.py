"""Params validation: the shipped file is valid; every bad value is one line naming its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worldr1 import config
from worldr1.errors import UserError


def test_shipped_params_are_valid(params_dict: dict[str, Any]) -> None:
    params = config.validate(params_dict)
    assert params.rounds["r000"].prev == "base"
    assert params.policy.lora.targets == ["to_q", "to_k", "to_v", "to_out.0"]
    assert params.grpo.lr == pytest.approx(1e-4)  # YAML 1.2: 1.0e-4 is a float, not a string


def set_key(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        data = data[int(p)] if isinstance(data, list) else data[p]
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("grpo.lrr", 1e-4, "grpo.lrr is not a known key (allowed here: lr, betas,"),
        ("prompts.sources.0.pth", "x", "prompts.sources[0].pth is not a known key (allowed here: path, split)"),
        ("rounds.r000.phse", "3d", "rounds.r000.phse is not a known key (allowed here: prev, phase)"),
        ("prompts.batch_per_round", "8", "prompts.batch_per_round: input should be a valid integer (got '8')"),
        ("grpo.clip", -0.1, "grpo.clip: input should be greater than 0 (got -0.1)"),
        ("grpo.clip", 1.5, "grpo.clip: input should be less than 1 (got 1.5)"),
        ("rollout.frames", 80, "rollout.frames: must be 4k+1 for Wan's VAE, e.g. 77 or 81 (got 80)"),
        ("rollout.height", 100, "rollout.height: must be a multiple of 16"),
        ("rollout.group_size", 1, "rollout.group_size: input should be greater than or equal to 2 (got 1)"),
        ("policy.dtype", "fp16", "policy.dtype: input should be 'auto', 'float32' or 'bfloat16' (got 'fp16')"),
        ("prompts.sources.0.split", "val", "prompts.sources[0].split: input should be 'train', 'dynamic' or 'test'"),
        ("rollout.camera_init", "no", "rollout.camera_init: input should be a valid boolean (got 'no')"),
        ("fsdp", "sometimes", "fsdp: input should be a valid boolean (got 'sometimes')"),
        ("fsdp", DELETE, "fsdp is missing"),
        ("camera", DELETE, "camera is missing"),
        ("seed", -1, "seed: input should be greater than or equal to 0 (got -1)"),
        ("grpo.betas", [0.9], "grpo.betas: list should have at least 2 items"),
        ("rounds.r001", {"prev": "r007", "phase": "3d"}, "rounds: r001.prev is 'r007' but must be 'r000'"),
        ("rounds.x1", {"prev": "r000", "phase": "3d"}, "rounds: round name 'x1' must look like r000"),
        ("rounds.r000.phase", "4d", "rounds.r000.phase: input should be '3d' or 'dynamic' (got '4d')"),
        ("rollout.sde.noise_level", 1.5, "rollout.sde.noise_level: input should be less than or equal to 1"),
        ("camera.push", float("inf"), "camera.push: input should be a finite number"),
        ("rollout.cfg", float("nan"), "rollout.cfg: input should be a finite number"),
        ("toy.classifier.net.width", 0, "toy.classifier.net.width: input should be greater than or equal to 1 (got 0)"),
        ("toy.classifier.heldout", 1, "toy.classifier.heldout: input should be greater than or equal to 2 (got 1)"),
        ("toy.classifier", DELETE, "toy.classifier is missing"),
    ],
)
def test_bad_value_names_key_path(params_dict: dict[str, Any], key: str, value: Any, message: str) -> None:
    set_key(params_dict, key, value)
    with pytest.raises(UserError) as info:
        config.validate(params_dict)
    line = info.value.line()
    assert line.startswith(f"params.yaml: {message}"), line
    assert "\n" not in line and "Fix:" in line


def test_no_source_at_all_is_an_error(params_dict: dict[str, Any]) -> None:
    params_dict["prompts"]["sources"] = []
    with pytest.raises(UserError, match="no prompt source"):
        config.validate(params_dict)
    params_dict["prompts"]["generator"]["count"] = 10
    config.validate(params_dict)


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\nprompts: [unclosed\n")
    with pytest.raises(UserError) as info:
        config.load(bad)
    assert "is not valid YAML at line" in info.value.line()
    # An unclosed bracket shows only on a later line: the message names where it opened too.
    bad.write_text("seed: 0\nprompts: {max_chars: 9\ngrpo: 1\n")
    with pytest.raises(UserError, match=r"at line 3: .*\(parsing a flow mapping that starts at line 2\)"):
        config.load(bad)


@pytest.mark.parametrize(
    "text, message", [("", "is empty"), ("# nothing\n", "is empty"), ("- a\n", "holds a YAML list, not a mapping")]
)
def test_empty_or_non_mapping_params_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(UserError, match=message):
        config.load(tmp_path / "params.yaml")


def test_misspelt_key_names_the_unknown_key_and_the_missing_one(params_dict: dict[str, Any]) -> None:
    params_dict["rollout"]["stepz"] = params_dict["rollout"].pop("steps")
    with pytest.raises(UserError) as info:
        config.validate(params_dict)
    assert info.value.cause.startswith("params.yaml: rollout.stepz is not a known key (allowed here: ")
    assert info.value.cause.endswith("; rollout.steps is missing (did you mean it?)")


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        config.load(tmp_path / "nope.yaml")


def test_params_hash_follows_only_the_declared_keys(params_dict: dict[str, Any]) -> None:
    base = config.validate(params_dict)
    params_dict["grpo"]["lr"] = 3e-4
    other_grpo = config.validate(params_dict)
    params_dict["prompts"]["max_chars"] = 999
    other_prompts = config.validate(params_dict)
    keys = ["seed", "prompts"]
    assert config.params_hash(base, keys) == config.params_hash(other_grpo, keys)
    assert config.params_hash(base, keys) != config.params_hash(other_prompts, keys)


def test_steps_per_round(params_dict: dict[str, Any]) -> None:
    params_dict["prompts"]["batch_per_round"] = 8
    params_dict["rollout"]["group_size"] = 4
    params_dict["grpo"]["minibatch_samples"] = 6
    params_dict["grpo"]["inner_epochs"] = 2
    # Whole groups per step: 6 samples hold one group of 4, so 8 steps per epoch.
    assert config.validate(params_dict).steps_per_round == 2 * 8


def test_toy_models_need_their_own_sizes(params_dict: dict) -> None:
    params_dict["policy"]["model"] = "toy"
    params_dict["toy"]["data"].update(frames=5, height=32, width=32)
    with pytest.raises(UserError, match="differ from toy.data's 5/32/32"):
        config.validate(params_dict)
    params_dict["rollout"].update(frames=5, height=32, width=32)
    assert config.validate(params_dict).uses_toy
    params_dict["reconstruct"]["backend"] = "toy"
    with pytest.raises(UserError, match="reconstruct.model must be `toy`"):
        config.validate(params_dict)
