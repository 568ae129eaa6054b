"""The update of the tiny Wan policy by four gloo ranks, replicated and with the frozen transformer
sharded (FSDP), on minibatches that split unevenly over the ranks (some ranks have no sample at all
in some) and with a non-finite sample; rank 0 saves what came out to `argv[1]`.

The script forks the four ranks laid out as torchrun lays out two nodes of two (RANK 0-3,
LOCAL_RANK 0, 1, 0, 1), so FSDP shards within a "node" and replicates across them; forked after the
imports, which cost most of a rank's start (one torch thread each: no thread pool crosses the fork).
tests/test_scale_out.py compares what they save with `update(World())` in one process.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback

import numpy as np
import torch
from peft.utils import get_peft_model_state_dict

from worldr1.config import EmaConfig, GrpoConfig, LoraConfig, PolicyConfig, SdeConfig
from worldr1.distributed import World, joined, world_from_env
from worldr1.grpo.sampler import Schedule, sample
from worldr1.grpo.trainer import StoredSample, Trainer
from worldr1.policy.tiny import MAX_SEQUENCE_LENGTH, tiny_pipeline
from worldr1.policy.wan import WanPolicy

POLICY = PolicyConfig(
    model="tiny",
    dtype="float32",
    attention="auto",
    lora=LoraConfig(rank=4, alpha=4.0, targets=["to_q", "to_k", "to_v", "to_out.0"]),
)
GRPO = GrpoConfig(
    lr=1e-3,
    betas=[0.9, 0.999],
    weight_decay=0.0,
    clip=0.2,
    beta=0.01,
    adv_clip=5.0,
    adv_std="group",
    inner_epochs=3,
    minibatch_samples=2,
    grad_clip=1.0,
    warmup_steps=0,
    ema=EmaConfig(enabled=True, decay=0.9),
)
SDE = SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)
SCHEDULE = Schedule.flow_match(6, 5.0)
CFG = 3.0
PROMPTS = ["a slow orbit around a stone fountain", "push in on a red door", "a crane shot over rooftops"]
# Five samples in three prompt groups ({s0, s3}, {s1, s4}, {s2}), each group a minibatch (of 2, 2 and 1)
# for three epochs: over the ranks the shares are uneven in terms (3 vs 1 steps in both pairs) and in
# samples (ranks 2 and 3 have none; rank 1 none in the minibatch of one); the NaN advantage makes one
# minibatch per epoch non-finite (on one rank).
STEPS = [(0, 1, 2), (1,), (0, 2), (2,), (0, 1, 2)]
ADVANTAGES = [1.0, -0.5, 0.8, float("nan"), -1.2]


def tiny_policy() -> WanPolicy:
    policy = WanPolicy(tiny_pipeline(), "tiny", torch.device("cpu"), torch.float32, MAX_SEQUENCE_LENGTH)
    policy.attach_adapter(POLICY, seed=7)
    return policy


def stored_samples(policy: WanPolicy) -> list[StoredSample]:
    shape = policy.latent_shape(5, 32, 32)
    out = []
    for n, (steps, advantage) in enumerate(zip(STEPS, ADVANTAGES)):
        prompt = PROMPTS[n % len(PROMPTS)]
        run = sample(
            policy,
            policy.encode([prompt]),
            policy.encode([""]),
            [torch.Generator().manual_seed(n)],
            shape,
            SCHEDULE,
            CFG,
            SDE,
            [0, 1, 2],
        )
        keep = list(steps)
        out.append(
            StoredSample(
                f"s{n}",
                prompt,
                advantage,
                steps,
                run.latents[0, keep],
                run.next_latents[0, keep],
                run.log_probs[0, keep],
            )
        )
    return out


def update(world: World, fsdp: bool) -> dict:
    """One round's update; the adapter, EMA and optimizer state and the metrics it leaves."""
    policy = tiny_policy()
    samples = stored_samples(policy)  # before sharding: sampling is not in lockstep
    if fsdp:
        policy.shard(world)
    weight = policy.transformer.blocks[0].attn1.to_q.base_layer.weight
    local = weight.to_local() if hasattr(weight, "to_local") else weight
    trainer = Trainer(policy, GRPO, SDE, SCHEDULE, CFG, "", world)
    metrics = trainer.train(samples, np.random.default_rng(0))
    with torch.no_grad():
        adapter = {
            k: v.clone() for k, v in get_peft_model_state_dict(policy.transformer, adapter_name="default").items()
        }
    return {
        "adapter": adapter,
        "trainer": trainer.state_tensors(),
        "metrics": metrics.as_dict(),
        "held": (local.numel(), weight.numel()),
        "placements": str(getattr(weight, "placements", None)),
    }


def rank_main(out: str) -> None:
    with joined(world_from_env()) as world:
        results = {mode: update(world, mode == "fsdp") for mode in ("replicate", "fsdp")}
    if world.main:
        torch.save(results, out)


def two_nodes_of_two(out: str) -> int:
    torch.set_num_threads(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    children = []
    for rank in range(4):
        pid = os.fork()
        if pid == 0:
            os.environ.update(
                RANK=str(rank), WORLD_SIZE="4", LOCAL_RANK=str(rank % 2), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
            )
            code = 1
            try:
                rank_main(out)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        children.append(pid)
    # A rank that fails kills the others, which would otherwise wait for it at the next collective.
    failed = 0
    while children:
        pid, status = os.wait()
        children.remove(pid)
        if os.waitstatus_to_exitcode(status) != 0 and not failed:
            failed = 1
            for other in children:
                os.kill(other, signal.SIGKILL)
    return failed


if __name__ == "__main__":
    sys.exit(two_nodes_of_two(sys.argv[1]))
