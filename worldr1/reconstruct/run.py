"""A round's reconstructions: one row per rollout sample, failures kept as rows with their reason.

Layout of the recon directory:
    recon.parquet                     one row per sample (store.RECON)
    geometry/<sample_id>.safetensors  extrinsics, intrinsics (frame pixels), depth and confidence (fp16)
    renders/<sample_id>/input.mp4     the scene rendered at every input camera
    renders/<sample_id>/path.mp4      ... along a wander then a dolly-zoom path around the middle camera
    renders/<sample_id>/meta.png      ... at the meta view (the input camera farthest from the first)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from PIL import Image
from safetensors.torch import save_file

from worldr1.config import ReconstructConfig
from worldr1.reconstruct.base import Reconstructor
from worldr1.reconstruct.scene import (
    ReconstructionFailed,
    check_cameras,
    check_frames,
    held_out_frames,
    needs_own_pass,
    reconstruction_gaussians,
    render_views,
)
from worldr1.video import read_mp4, write_mp4

log = logging.getLogger("worldr1.reconstruct")


def reconstruct_round(
    reconstructor: Reconstructor,
    samples: pa.Table,
    rollout_dir: Path,
    out: Path,
    cfg: ReconstructConfig,
    fps: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> pa.Table:
    rows = []
    listed = samples.to_pylist()
    for n, sample in enumerate(listed):
        rows.append(reconstruct_sample(reconstructor, sample, rollout_dir, out, cfg, fps, device))
        if progress:
            progress(n + 1, len(listed))
    return pa.Table.from_pylist(rows)


def reconstruct_sample(
    reconstructor: Reconstructor,
    sample: dict,
    rollout_dir: Path,
    out: Path,
    cfg: ReconstructConfig,
    fps: int,
    device: torch.device,
) -> dict[str, object]:
    """One rollout sample: its video read from the rollout directory, then `reconstruct_frames`."""
    try:
        if sample["status"] != "ok" or not sample["video"]:
            raise ReconstructionFailed(f"rollout failed: {sample['error']}")
        try:
            frames = read_mp4(rollout_dir / sample["video"])
        except Exception as exc:  # noqa: BLE001 - ffmpeg's many ways of refusing a file
            raise ReconstructionFailed(
                f"unreadable video {sample['video']}: {str(exc).splitlines()[0][:200]}"
            ) from None
    except ReconstructionFailed as exc:
        row = empty_recon_row(sample["sample_id"], sample["round"])
        row.update(status="failed", error=str(exc))
        return row
    return reconstruct_frames(reconstructor, frames, sample["sample_id"], sample["round"], out, cfg, fps, device)


def empty_recon_row(sid: str, round_name: str) -> dict[str, object]:
    """A recon row (store.RECON) before anything is known."""
    return {
        "sample_id": sid,
        "round": round_name,
        "status": "ok",
        "error": None,
        "frames": None,
        "geometry": None,
        "renders": None,
        "n_gaussians": None,
        "gaussian_frames": None,
        "confident_fraction": None,
        "path_length": None,
        "meta_index": None,
    }


def reconstruct_frames(
    reconstructor: Reconstructor,
    frames: np.ndarray,
    sid: str,
    round_name: str,
    out: Path,
    cfg: ReconstructConfig,
    fps: float,
    device: torch.device,
    novel_path: bool = True,
) -> dict[str, object]:
    """Reconstruct one video's uint8 `[F, H, W, 3]` frames and write its geometry and renders under `out`
    (the recon directory layout above); returns its recon row, `failed` with the reason when it cannot be.
    Without `novel_path` there is no path.mp4 (`render_views`): for scoring that no person looks at."""
    row = empty_recon_row(sid, round_name)
    try:
        row["frames"] = int(frames.shape[0]) if frames.ndim == 4 else 0
        check_frames(frames)
        recon = reconstructor.reconstruct(frames)
        cams = recon.cameras
        check_cameras(cams)
        even = None
        if needs_own_pass(recon, cfg.holdout):
            used = held_out_frames(len(frames))
            if len(used) < 2:
                raise ReconstructionFailed(
                    f"{len(frames)} frames: a held-out scene needs 2 even frames (3 frames in all)"
                )
            even = reconstructor.reconstruct(frames[used])
            check_cameras(even.cameras)
        scene = reconstruction_gaussians(recon, cfg.holdout, cfg.conf_percentile, cfg.max_gaussians, cfg.edge_rel, even)
        depth = recon.depth[torch.isfinite(recon.depth) & (recon.depth > 0)]
        median_depth = float(depth.median()) if depth.numel() else 1.0
        views = render_views(
            scene.gaussians.to(device),
            scene.cameras(cams),
            scene.depth(median_depth),
            cfg.renderer,
            novel_path=novel_path,
        )
    except ReconstructionFailed as exc:
        row.update(status="failed", error=str(exc))
        return row
    except (RuntimeError, ValueError) as exc:
        # A model or kernel error on one sample (odd shapes, numerical trouble, out of memory) must
        # not lose the round: the sample fails with its reason, and the log keeps the trace.
        log.warning("reconstruct %s failed", sid, exc_info=True)
        row.update(status="failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return row

    geometry = f"geometry/{sid}.safetensors"
    (out / "geometry").mkdir(exist_ok=True)
    save_file(
        {
            "extrinsics": torch.from_numpy(cams.w2c).contiguous(),
            "intrinsics": torch.from_numpy(cams.K).contiguous(),
            "depth": recon.depth.half().contiguous(),
            "conf": recon.conf.half().contiguous(),
            "gaussian_frames": torch.tensor(scene.frames_used, dtype=torch.int32),
        },
        str(out / geometry),
    )
    renders = out / "renders" / sid
    renders.mkdir(parents=True)
    write_mp4(renders / "input.mp4", views.input, fps)
    if novel_path:
        write_mp4(renders / "path.mp4", views.path, fps)
    Image.fromarray(np.ascontiguousarray(views.meta)).save(renders / "meta.png")
    row.update(
        geometry=geometry,
        renders=f"renders/{sid}",
        n_gaussians=len(scene.gaussians),
        gaussian_frames=scene.frames_used,
        confident_fraction=scene.confident_fraction,
        path_length=cams.path_length(),
        meta_index=views.meta_index,
    )
    return row
