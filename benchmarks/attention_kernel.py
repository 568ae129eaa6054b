"""Which attention kernel should the toy policy pin on a CPU? Times the trained toy policy's
transformer under each of torch's CPU kernels, through diffusers' backends as `policy.attention`
pins them: a pretraining step (forward and backward of every weight, the toy-pretrain stage's
batch), a rollout call (no autograd, a prompt group with CFG) and an update step (forward and
backward through the LoRA adapter, a minibatch).

    python benchmarks/attention_kernel.py [--repeats 20]

Run from the project root once toy-pretrain has run. Prints seconds per call, the median of
`--repeats` after two warm-up calls, for each kernel.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from worldr1 import config, store
from worldr1.policy.attention import pin_attention
from worldr1.policy.toy import load_toy

KERNELS = ("_native_flash", "_native_math")


def timed(fn: Callable[[], None], repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    params = config.load()
    ro = params.rollout
    policy = load_toy(Path(store.Paths().toy_policy))
    shape = policy.latent_shape(ro.frames, ro.height, ro.width)
    gen = torch.Generator().manual_seed(0)
    text = policy.encode(["Camera orbit left. A red cube beside a blue sphere."])
    batch = params.toy.policy.train.batch

    def pretrain_step() -> None:
        policy.transformer.requires_grad_(True)
        x = torch.randn((batch, *shape), generator=gen)
        out = policy.clean(x, torch.full((batch,), 500.0), text.expand(batch, -1, -1))
        out.square().mean().backward()
        policy.transformer.zero_grad(set_to_none=True)

    def rollout_call() -> None:
        n = 2 * ro.group_size  # a group, conditional and unconditional
        with torch.no_grad():
            policy.velocity(torch.randn((n, *shape), generator=gen), torch.full((n,), 500.0), text.expand(n, -1, -1))

    results: dict[str, dict[str, float]] = {}
    for kernel in KERNELS:
        pin_attention(policy.transformer, kernel)
        results[kernel] = {
            "pretrain_step_s": timed(pretrain_step, args.repeats),
            "rollout_call_s": timed(rollout_call, args.repeats),
        }
    policy.transformer.requires_grad_(False)
    policy.attach_adapter(params.policy, params.seed, None)
    policy.prepare_training()
    n = params.grpo.minibatch_samples

    def update_step() -> None:
        x = torch.randn((n, *shape), generator=gen)
        policy.velocity(x, torch.full((n,), 500.0), text.expand(n, -1, -1)).square().mean().backward()
        for p in policy.transformer.parameters():
            p.grad = None

    for kernel in KERNELS:
        pin_attention(policy.transformer, kernel)
        results[kernel]["update_step_s"] = timed(update_step, args.repeats)
    for kernel, r in results.items():
        print(kernel, {k: round(v, 4) for k, v in r.items()})


if __name__ == "__main__":
    main()
