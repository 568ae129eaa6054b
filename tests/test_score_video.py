"""`worldr1 score`: outside videos through the stages' own code, the same rows as the stage, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from helpers import BIN, ROOT, edit, run
from safetensors import safe_open

from worldr1 import audit, config, ids, store
from worldr1.geometry.cameras import intrinsics_from_fov
from worldr1.geometry.raster import render
from worldr1.geometry.synthetic import card_scene, orbit_cameras
from worldr1.profiles import use_profile
from worldr1.reconstruct.run import reconstruct_round
from worldr1.reconstruct.toy import ToyReconstructor
from worldr1.rewards.score import round_videos
from worldr1.score_video import ROUND, VideoScorer, read_video
from worldr1.video import frame_indices, read_mp4, write_mp4

WORLDR1 = str(BIN / "worldr1")
PROMPT = "Camera orbit left. Three textured cards float in front of a painted wall."
N, SIZE, FPS = 5, 32, 16
# DA3 (random weights) at its smallest working resolution: a few seconds a video on a CPU.
FAST = {"reconstruct.process_res": 56, "reconstruct.max_gaussians": 1000}
# What only a round has: its ids and its rollout group.
ROUND_ONLY = ("sample_id", "round", "group_index", "group_mean", "group_std", "group_valid", "advantage")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A consistent orbit around a card scene (as in test_rewards), the same frames shuffled, and degenerate ones."""
    d = tmp_path_factory.mktemp("clips")
    cams = orbit_cameras(np.linspace(0, 12, N), SIZE, SIZE)  # orbit left: slides right, turns left
    out = render(
        card_scene(seed=2, density=24),
        torch.from_numpy(cams.w2c).float(),
        torch.from_numpy(cams.K).float(),
        SIZE,
        SIZE,
        "torch",
    )
    frames = (out.rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    videos = {
        "orbit": frames,
        "shuffled": frames[np.random.default_rng(0).permutation(N)],
        "frozen": np.repeat(frames[:1], N, 0),
        "black": np.zeros_like(frames),
        "one": frames[:1],
    }
    for name, v in videos.items():
        write_mp4(d / f"{name}.mp4", v, FPS)
    (d / "text.mp4").write_text("not a video\n")
    (d / "empty.mp4").write_bytes(b"")
    return {name: d / f"{name}.mp4" for name in [*videos, "text", "empty"]}


@pytest.fixture(scope="module")
def params_file(tmp_path_factory: pytest.TempPathFactory, tiny_params_file: Path) -> Path:
    d = tmp_path_factory.mktemp("params")
    shutil.copy(tiny_params_file, d / "params.yaml")
    edit(d, FAST)
    return d / "params.yaml"


@pytest.fixture(scope="module")
def params(params_file: Path) -> config.Params:
    return config.load(params_file)


@pytest.fixture(scope="module")
def scorer(params: config.Params) -> VideoScorer:
    return VideoScorer(params)


@pytest.fixture(scope="module")
def scored(scorer: VideoScorer, clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The library function on the orbit and the shuffled video."""
    videos = [read_video(clips[n]) for n in ("orbit", "shuffled")]
    return scorer.score(videos, PROMPT, tmp_path_factory.mktemp("work")).rewards.to_pylist()


def stage_rows(scorer: VideoScorer, params: config.Params, paths: list[Path], prompt: str, tmp: Path) -> list[dict]:
    """What reconstruct@r000 and score@r000 make of `paths` as one rollout group of `prompt`:
    the calls their stage scripts make, on a round directory built by hand."""
    rollout, recon_dir = tmp / "rollout", tmp / "recon"
    (rollout / "videos").mkdir(parents=True)
    recon_dir.mkdir()
    pid, samples = ids.prompt_id(prompt), []
    for i, path in enumerate(paths):
        sid = ids.sample_id("r000", pid, i)
        shutil.copy(path, rollout / "videos" / f"{sid}.mp4")
        samples.append(
            {
                "sample_id": sid,
                "round": "r000",
                "phase": "3d",
                "split": "train",
                "prompt_id": pid,
                "prompt": prompt,
                "camera": ["orbit_left"],
                "group_index": i,
                "seed": i,
                "video": f"videos/{sid}.mp4",
                "steps": None,
                "frames": N,
                "height": SIZE,
                "width": SIZE,
                "fps": FPS,
                "trained_steps": [],
                "log_prob_sum": None,
                "log_prob_mean": None,
                "status": "ok",
                "error": None,
            }
        )
    table = pa.Table.from_pylist(samples).select(store.SAMPLES.schema.names).cast(store.SAMPLES.schema)
    recon = reconstruct_round(
        scorer.reconstructor, table, rollout, recon_dir, params.reconstruct, params.rollout.fps, scorer.device
    )
    rows = scorer.scorer.score(round_videos(table.to_pylist(), recon, rollout, recon_dir), "3d")
    return scorer.scorer.reward(rows, "3d").to_pylist()


def test_the_command_scores_like_the_stage(
    scorer: VideoScorer, params: config.Params, clips: dict[str, Path], scored: list[dict], tmp_path: Path
) -> None:
    assert params.rollout.fps == FPS  # the stage writes renders at rollout.fps, the command at the file's
    stage = stage_rows(scorer, params, [clips["orbit"], clips["shuffled"]], PROMPT, tmp_path)
    assert [r["group_valid"] for r in stage] != [None, None]  # the stage has a group ...
    for ours, theirs in zip(scored, stage):
        assert ours["group_valid"] is None and ours["advantage"] is None and ours["round"] == ROUND  # ... we do not
        assert {k: v for k, v in ours.items() if k not in ROUND_ONLY} == {
            k: v for k, v in theirs.items() if k not in ROUND_ONLY
        }


def test_cli_prints_the_terms_and_writes_what_audit_reads(
    clips: dict[str, Path], scored: list[dict], params_file: Path, tmp_path: Path
) -> None:
    out, keep = tmp_path / "scores.parquet", tmp_path / "kept"
    proc = run(
        [
            WORLDR1,
            "score",
            str(clips["orbit"]),
            str(clips["shuffled"]),
            "--prompt",
            PROMPT,
            "--out",
            str(out),
            "--keep",
            str(keep),
            "--params",
            str(params_file),
        ],
        tmp_path,
    )
    for word in (
        "camera: orbit_left",
        "orbit",
        "shuffled",
        f"{N} of {N}",
        "status",
        "reward",
        "s_recon",
        "s_traj",
        "s_meta",
        "r_gen",
        "psnr",
        "ssim",
        "lpips",
        "motion",
    ):
        assert word in proc.stdout, word
    rows = audit.load([str(out)]).to_pylist()
    assert rows == scored  # the file holds what the function returns, to the bit
    assert all(f"{r['reward']:.3f}" in proc.stdout for r in scored if r["reward"] is not None)
    meta = store.read_metadata_of(audit.load([str(out)]))
    assert meta["schema"] == "rewards" and "reconstructor" in meta["models"] and meta["params_hash"]
    # --keep lays the work out as a round: rewards beside rollout/ and recon/
    assert store.read_table(str(keep / "rewards.parquet"), store.REWARDS).to_pylist() == scored
    samples = store.read_table(str(keep / "rollout/samples.parquet"), store.SAMPLES).to_pylist()
    assert read_mp4(keep / "rollout" / samples[0]["video"]).shape == (N, SIZE, SIZE, 3)
    recon = store.read_table(str(keep / "recon/recon.parquet"), store.RECON).to_pylist()
    assert all((keep / "recon" / r["renders"] / "input.mp4").is_file() for r in recon if r["status"] == "ok")
    summary = run([WORLDR1, "audit", str(out)], tmp_path).stdout
    assert "2 samples" in summary and ROUND in summary


def test_degenerate_videos_are_rows_and_no_camera_is_a_reason(
    scorer: VideoScorer, clips: dict[str, Path], tmp_path: Path
) -> None:
    black, frozen = scorer.score(
        [read_video(clips["black"]), read_video(clips["frozen"])], PROMPT, tmp_path / "a"
    ).rewards.to_pylist()
    assert black["status"] == "failed" and "black" in black["error"] and black["reward"] is None
    assert frozen["motion"] == 0.0
    assert frozen["status"] == "failed" or frozen["motion_factor"] == 0.0  # a frozen video wins no 3D term
    (plain,) = scorer.score(
        [read_video(clips["orbit"])], "Three cards float in front of a wall.", tmp_path / "b"
    ).rewards.to_pylist()
    assert plain["camera"] == [] and plain["s_traj"] is None
    assert plain["status"] == "failed" or "no camera sentence" in plain["s_traj_reason"]


def test_long_videos_are_subsampled_evenly(clips: dict[str, Path]) -> None:
    assert frame_indices(17, 5) == [0, 4, 8, 12, 16] and frame_indices(3, 49) == [0, 1, 2]
    video = read_video(clips["orbit"], max_frames=3)
    assert video.total_frames == N and video.fps == pytest.approx(FPS * 3 / N)
    np.testing.assert_array_equal(video.frames, read_mp4(clips["orbit"])[[0, 2, 4]])


@pytest.mark.parametrize(
    ("video", "prompt", "message"),
    [
        ("missing", PROMPT, "not found"),
        ("text", PROMPT, "as a video"),
        ("empty", PROMPT, "as a video"),
        ("one", PROMPT, "has 1 frame(s)"),
        ("orbit", "   ", "the prompt is empty"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    clips: dict[str, Path], tmp_path: Path, video: str, prompt: str, message: str, params_file: Path
) -> None:
    path = clips.get(video, tmp_path / "missing.mp4")
    out, keep = tmp_path / "scores.parquet", tmp_path / "kept"
    proc = run(
        [
            WORLDR1,
            "score",
            str(path),
            "--prompt",
            prompt,
            "--out",
            str(out),
            "--keep",
            str(keep),
            "--params",
            str(params_file),
        ],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and not keep.exists()


def test_keep_never_replaces_a_folder_with_content(clips: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    proc = run(
        [WORLDR1, "score", str(clips["orbit"]), "--prompt", PROMPT, "--keep", str(tmp_path)], tmp_path, check=False
    )
    assert proc.returncode == 2 and "is not an empty folder" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def wall_reconstructor(K: np.ndarray, depth: float = 3.0, step: float = 0.05) -> ToyReconstructor:
    """A 32x32 toy reconstructor set by hand, not trained: a wall at `depth`, every later frame `step`
    to the side. An untrained one's random depth and cameras agree on no pixel, which s_reproj refuses."""
    recon = ToyReconstructor.fresh(8, 2, K, (32, 32), seed=0)
    with torch.no_grad():
        recon.net.depth.out.weight.zero_()
        recon.net.depth.out.bias.fill_(float(np.log(depth)))
        recon.net.pose.head[-1].weight.zero_()
        recon.net.pose.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, step, 0.0, 0.0]))
    return recon


def test_the_toy_profile_scores_a_video_of_another_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy reconstructor works at its 32x32 and renders at the video's 64x64, as DA3 does at process_res."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    use_profile(tmp_path / "params.yaml", "toy")
    edit(tmp_path, {"reconstruct.max_gaussians": 1000})  # the torch rasteriser at 64x64: keep it quick
    params = config.load(tmp_path / "params.yaml")
    assert params.reconstruct.backend == "toy"
    monkeypatch.chdir(tmp_path)  # where load_reconstructor finds the toy-pretrain stage's output
    weights = Path(store.Paths(".").toy_reconstructor)
    weights.mkdir(parents=True)
    wall_reconstructor(intrinsics_from_fov(32, 32, 55.0)).save(weights)

    # A texture panning a pixel a frame, enlarged 2x: 9 frames of 64x64 without rendering them.
    n, size = 9, 64
    texture = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    frames = np.stack([np.roll(texture, i, axis=1) for i in range(n)]).repeat(2, 1).repeat(2, 2)
    write_mp4(tmp_path / "big.mp4", frames, FPS)
    scored = VideoScorer(params).score([read_video(tmp_path / "big.mp4")], PROMPT, tmp_path / "work")
    (row,) = scored.rewards.to_pylist()
    assert row["status"] == "ok", row["error"]
    assert np.isfinite(row["s_recon"]) and np.isfinite(row["psnr"]) and row["reward"] is not None
    (recon,) = scored.recon.to_pylist()
    assert read_mp4(tmp_path / "work/recon" / recon["renders"] / "input.mp4").shape == (n, size, size, 3)
    with safe_open(str(tmp_path / "work/recon" / recon["geometry"]), "pt") as f:
        assert f.get_tensor("depth").shape == (n, 32, 32)
        np.testing.assert_allclose(f.get_tensor("intrinsics").numpy()[0], intrinsics_from_fov(size, size, 55.0))
