"""The fixed probe set (worldr1/evaluate.py `probe_prompts`) and its curve (worldr1/audit/curve.py
`probe_curve`); the stage itself runs in test_update_stage's two-round pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from worldr1.audit.curve import PROBE_KEYS, probe_curve, to_csv
from worldr1.errors import UserError
from worldr1.evaluate import probe_prompts


def prompts_table() -> pa.Table:
    rows = [
        {"prompt_id": f"p{i}", "text": f"Camera orbit left. Prompt {i}.", "split": split}
        for i, split in enumerate(["test", "train", "train", "test", "train"])
    ]
    return pa.Table.from_pylist(rows)


def test_probe_set_is_the_first_train_prompts_each_under_its_own_seeds() -> None:
    probe = probe_prompts(prompts_table(), 2, 3)
    assert [p.prompt_id for p in probe] == ["p1~0", "p1~1", "p1~2", "p2~0", "p2~1", "p2~2"]
    assert probe[0].text == "Camera orbit left. Prompt 1." and probe[3].text == "Camera orbit left. Prompt 2."
    assert probe_prompts(prompts_table(), 2, 3) == probe  # fixed: the same set every round
    with pytest.raises(UserError, match="probe.prompts is 4 but the prompts table has 3 train prompts"):
        probe_prompts(prompts_table(), 4, 1)


def write_probe(reports: Path, name: str, means: dict[str, dict[str, float]]) -> None:
    (reports / f"{name}-probe.json").write_text(json.dumps({"round": name, "means": means}))


def test_probe_curve_starts_at_base_then_one_row_per_round(tmp_path: Path) -> None:
    write_probe(
        tmp_path,
        "r000",
        {
            "base": {"reward": 1.0, "p_consistent": 0.3, "failed": 0},
            "r000": {"reward": 1.5, "p_consistent": 0.4, "failed": 1},
        },
    )
    write_probe(tmp_path, "r001", {"r001": {"reward": 2.0, "p_consistent": None, "failed": 0}})
    table = probe_curve(["r000", "r001"], tmp_path)
    assert table.column_names == ["round", *PROBE_KEYS]
    assert table.column("round").to_pylist() == ["base", "r000", "r001"]
    assert table.column("reward").to_pylist() == [1.0, 1.5, 2.0]
    assert table.column("p_consistent").to_pylist() == [0.3, 0.4, None]
    assert table.column("failed").to_pylist() == [0, 1, 0]
    assert to_csv(table).splitlines()[1].startswith("base,1,")


def test_probe_curve_names_the_missing_round(tmp_path: Path) -> None:
    write_probe(tmp_path, "r000", {"base": {"reward": 1.0}})
    with pytest.raises(UserError, match="has no numbers for r000") as err:
        probe_curve(["r000"], tmp_path)
    assert "dvc repro -f probe@r000" in err.value.fix
    with pytest.raises(UserError, match="r001-probe.json is missing"):
        probe_curve(["r001"], tmp_path)
