"""Stage `base`: the policy before round r000 -> data/rounds/base/policy (a fresh LoRA adapter, B = 0).

Every round then loads its policy from the previous round's directory, base included, so
rollout@r000 and update@r000 start from the same saved adapter.
"""

from __future__ import annotations

import json

from worldr1 import config, store
from worldr1.policy import load_policy
from worldr1.stagekit import stage

PARAMS = ["seed", "policy"]


def main() -> None:
    params = config.load()
    out = store.Paths().policy_dir("base")
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed)
    with store.atomic_dir(out) as tmp:
        policy.save_adapter(tmp, params.policy)
        state = {
            "round": "base",
            "optimizer_steps": 0,
            "policy": policy.name,
            "seed": params.seed,
            "params_hash": config.params_hash(params, PARAMS),
            "code_version": store.code_version(),
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")


if __name__ == "__main__":
    stage(main)
