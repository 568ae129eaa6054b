"""The registry of reward terms (worldr1/rewards/terms.py): a term added there, with its function in
`score.COMPUTE` and its weight in params, reaches every list of terms without another edit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from worldr1 import config, profiles, store
from worldr1.audit import curve, html
from worldr1.evaluate import METRICS
from worldr1.rewards import terms as registry
from worldr1.rewards.combine import combine
from worldr1.rewards.score import COMPUTE, JUDGED, TermInput, compute_terms, empty_rewards_row
from worldr1.rewards.terms import REWARD_TERMS, RewardTerm

#: A new term as its author would add it: 3D, guarded, with a metric that must be finite and a reason.
TOY = RewardTerm(
    "s_toy",
    three_d=True,
    motion_guarded=True,
    colour="#123456",
    metrics=("toy_metric",),
    finite=("toy_metric",),
    has_reason=True,
)
EXTENDED = (*REWARD_TERMS, TOY)
SAMPLE = {
    "sample_id": "s0",
    "round": "r000",
    "prompt_id": "p0",
    "prompt": "a room",
    "camera": ["push_in"],
    "group_index": 0,
}

#: store.REWARDS v2, column by column: a change of the terms without a bump of REWARDS_VERSION fails here.
V2 = [
    ("sample_id", "string", False),
    ("round", "string", False),
    ("phase", "string", False),
    ("prompt_id", "string", False),
    ("prompt", "string", False),
    ("camera", "list<item: string>", False),
    ("group_index", "int32", False),
    *[(n, "double", True) for n in ("s_recon", "s_reproj", "s_traj", "s_meta", "r_gen")],
    ("s_traj_reason", "string", True),
    *[
        (n, "double", True)
        for n in (
            "psnr",
            "ssim",
            "lpips",
            "reproj_psnr",
            "reproj_bad",
            "traj_translation",
            "traj_rotation",
            "motion",
            "motion_factor",
            "w_s_recon",
            "w_s_reproj",
            "w_s_traj",
            "w_s_meta",
            "w_r_gen",
            "reward",
            "group_mean",
            "group_std",
        )
    ],
    ("group_valid", "int32", True),
    ("advantage", "double", True),
    ("status", "string", False),
    ("error", "string", True),
]


def test_rewards_v2_schema_is_the_registrys() -> None:
    assert store.REWARDS.version == registry.REWARDS_VERSION
    if store.REWARDS.version == 2:
        assert [(f.name, str(f.type), f.nullable) for f in store.REWARDS.schema] == V2


def test_every_term_has_a_function_weight_and_colour() -> None:
    # The judge's term is the one scored in batches; every other one needs its function in COMPUTE.
    assert set(COMPUTE) | {JUDGED} == set(registry.names()) and JUDGED not in COMPUTE
    for name in profiles.available():
        weights = YAML(typ="safe", pure=True).load(profiles.profile_text(name))["reward"]["weights"]
        assert tuple(config.RewardWeightsConfig.model_validate(weights).model_dump()) == registry.names(), name
    assert registry.names() == ("s_recon", "s_reproj", "s_traj", "s_meta", "r_gen")
    assert set(html.COLOURS) >= set(registry.names())


def test_a_new_term_reaches_the_schema_row_weights_and_audit() -> None:
    spec = store.rewards_schema(EXTENDED, version=3)
    names = spec.schema.names
    assert names.index("s_toy") == names.index("r_gen") + 1
    assert names.index("toy_metric") == names.index("traj_rotation") + 1
    assert {"s_toy_reason", "w_s_toy"} <= set(names) and spec.schema.field("s_toy_reason").type == pa.string()
    row = empty_rewards_row(SAMPLE, "3d", EXTENDED)
    row.update(s_toy=0.5, toy_metric=1.0, s_toy_reason=None, status="ok")
    assert store.conform(pa.Table.from_pylist([row]), spec).column("s_toy").to_pylist() == [0.5]
    assert "toy_metric" in registry.finite_columns(EXTENDED)
    assert registry.colours(EXTENDED)["s_toy"] == "#123456"
    assert "s_toy" in registry.evaluated(EXTENDED)
    # Today's lists hold exactly the registry's terms (each is built from it at import).
    assert [k for k in curve.REWARD_KEYS if k.removesuffix("_mean") in registry.names()] == [
        f"{n}_mean" for n in registry.names()
    ]
    assert [m for m in METRICS if m in registry.names()] == list(registry.evaluated())


def test_a_new_term_is_weighted_guarded_and_validated() -> None:
    model = config.reward_weights_model(EXTENDED)
    base = dict.fromkeys(registry.names(), 1.0)
    weights = model.model_validate({**base, "s_toy": 2.0})
    values = {**dict.fromkeys(registry.names()), "s_toy": 0.5}
    assert combine(values, weights, "3d", 0.5, EXTENDED).reward == pytest.approx(2.0 * 0.5 * 0.5)
    assert combine(values, weights, "dynamic", 0.5, EXTENDED).reward is None  # 3D: off in dynamic rounds
    with pytest.raises(ValidationError) as missing:
        model.model_validate(base)
    assert config.describe(missing.value.errors()[0], "p.yaml") == "p.yaml: s_toy is missing"
    # The same check and message as every other weight's.
    messages = []
    for name in ("s_recon", "s_toy"):
        with pytest.raises(ValidationError) as negative:
            model.model_validate({**base, "s_toy": 1.0, name: -1.0})
        messages.append(config.describe(negative.value.errors()[0], "p.yaml").replace(name, "TERM"))
    assert messages[0] == messages[1] == "p.yaml: TERM: input should be greater than or equal to 0 (got -1.0)"
    # The shipped params know no such term: a weight for it is a typo until it is registered.
    with pytest.raises(ValidationError, match="s_toy"):
        config.RewardWeightsConfig.model_validate({**base, "s_toy": 1.0})


def test_a_new_terms_function_fills_the_row(params_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def toy_columns(v: TermInput) -> dict[str, object]:
        return {"s_toy": float(v.recon.w2c.shape[0]) / 10, "toy_metric": 7.0}

    monkeypatch.setitem(COMPUTE, "s_toy", toy_columns)
    row = empty_rewards_row(SAMPLE, "3d", EXTENDED)
    given = TermInput(
        config.validate(params_dict),
        row,
        np.zeros((3, 8, 8, 3), np.uint8),
        quality=None,  # type: ignore[arg-type]
        lpips=None,
        no_camera_reason="none",
    )
    compute_terms(row, given, three_d=False, terms=(TOY,))
    assert row["s_toy"] is None  # a 3D term waits for the reconstruction
    with pytest.raises(RuntimeError, match="three_d"):
        compute_terms(row, given, three_d=True, terms=(TOY,))
    views = type("Views", (), {"w2c": np.zeros((4, 4, 4))})()
    compute_terms(row, replace(given, views=views), three_d=True, terms=(TOY,))
    assert (row["s_toy"], row["toy_metric"]) == (0.4, 7.0)
    monkeypatch.setitem(COMPUTE, "s_toy", lambda v: {"stray": 1.0})
    with pytest.raises(AssertionError, match="not its columns"):
        compute_terms(row, replace(given, views=views), three_d=True, terms=(TOY,))
