"""Stage `reconstruct@rK`: rollout videos -> data/rounds/rK/recon/ (cameras, depth, renders, recon.parquet)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from worldr1 import config, store
from worldr1.cli import err, progress_bar, round_item, stage
from worldr1.policy import default_device
from worldr1.reconstruct import load_reconstructor
from worldr1.reconstruct.run import reconstruct_round

PARAMS = ["reconstruct", "rollout.fps"]


def main() -> None:
    params = config.load()
    round_name, _ = round_item(params, sys.argv[1:])
    paths = store.Paths()
    samples = store.read_table(paths.samples(round_name), store.SAMPLES)
    cfg = params.reconstruct
    reconstructor = load_reconstructor(cfg.backend, cfg.model, cfg.process_res)
    provenance = store.Provenance(config.params_hash(params, PARAMS), store.code_version(),
                                  {"reconstructor": reconstructor.name})
    start = time.perf_counter()
    with store.atomic_dir(paths.recon_dir(round_name)) as out, progress_bar(f"reconstruct@{round_name}") as tick:
        rows = reconstruct_round(reconstructor, samples, Path(paths.rollout_dir(round_name)), out, cfg,
                                 params.rollout.fps, default_device(), tick)
        store.write_table(str(out / "recon.parquet"), rows, store.RECON, provenance)
    failed = [e for s, e in zip(rows.column("status").to_pylist(), rows.column("error").to_pylist()) if s != "ok"]
    per_sample = (time.perf_counter() - start) / max(rows.num_rows, 1)
    # Timings go to the log, not recon.parquet: an artifact holding them would never rebuild byte for byte.
    err.print(f"reconstruct@{round_name}: {rows.num_rows - len(failed)} of {rows.num_rows} samples reconstructed "
              f"({per_sample:.1f} s each)"
              + (f"; {len(failed)} failed, e.g. {failed[0]}" if failed else ""), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    stage(main)
