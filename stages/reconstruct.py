"""Stage `reconstruct@rK`: rollout videos -> data/rounds/rK/recon/ (cameras, depth, renders, recon.parquet)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow as pa

from worldr1 import config, store
from worldr1.device import default_device
from worldr1.distributed import atomic_dir, gather_rows, joined, world_from_env
from worldr1.reconstruct import load_reconstructor
from worldr1.reconstruct.run import reconstruct_round
from worldr1.stagekit import err, progress_bar, round_item, stage

PARAMS = ["reconstruct", "rollout.fps"]


def main() -> None:
    params = config.load()
    round_name, _ = round_item(params, sys.argv[1:])
    paths = store.Paths()
    samples = store.read_table(paths.samples(round_name), store.SAMPLES)
    cfg = params.reconstruct
    with joined(world_from_env()) as world:
        reconstructor = load_reconstructor(cfg.backend, cfg.model, cfg.process_res)
        provenance = store.Provenance(
            config.params_hash(params, PARAMS), store.code_version(), {"reconstructor": reconstructor.name}
        )
        start = time.perf_counter()
        mine = pa.Table.from_pylist(world.mine(samples.to_pylist()), schema=samples.schema)
        with (
            atomic_dir(world, paths.recon_dir(round_name)) as out,
            progress_bar(f"reconstruct@{round_name}", world) as tick,
        ):
            done = reconstruct_round(
                reconstructor,
                mine,
                Path(paths.rollout_dir(round_name)),
                out,
                cfg,
                params.rollout.fps,
                default_device(),
                tick,
            )
            rows = gather_rows(
                world,
                out,
                "recon",
                done.to_pylist(),
                lambda r: r["sample_id"],
                samples.column("sample_id").to_pylist(),
                store.RECON,
            )
            if rows is not None:
                store.write_table(str(out / "recon.parquet"), pa.Table.from_pylist(rows), store.RECON, provenance)
    if rows is None:
        return
    failed = [r["error"] for r in rows if r["status"] != "ok"]
    per_sample = (time.perf_counter() - start) / max(len(rows), 1)
    # Timings go to the log, not recon.parquet: an artifact holding them would never rebuild byte for byte.
    err.print(
        f"reconstruct@{round_name}: {len(rows) - len(failed)} of {len(rows)} samples reconstructed "
        f"({per_sample * world.size:.1f} s each"
        + (f" on each of {world.size} ranks)" if world.size > 1 else ")")
        + (f"; {len(failed)} failed, e.g. {failed[0]}" if failed else ""),
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    stage(main)
