"""Where model weights are: a local directory or the Hugging Face cache, never a surprise download."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from worldr1.errors import UserError


@dataclass(frozen=True)
class KnownModel:
    repo_id: str
    role: str
    # A file every complete copy has, to tell a real snapshot from an empty or partial folder.
    marker: str


KNOWN_MODELS = [
    KnownModel("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "policy (wan2.1-1.3b)", "model_index.json"),
    KnownModel("Wan-AI/Wan2.1-T2V-14B-Diffusers", "policy (wan2.1-14b)", "model_index.json"),
    KnownModel("depth-anything/DA3-SMALL", "reconstructor", "config.json"),
    KnownModel("depth-anything/DA3-BASE", "reconstructor", "config.json"),
    KnownModel("depth-anything/DA3-GIANT", "reconstructor (Gaussian head, non-commercial)", "config.json"),
    KnownModel("Qwen/Qwen3-VL-4B-Instruct", "judge (s_meta)", "config.json"),
    KnownModel("xswu/HPSv2", "quality (r_gen)", "HPS_v2.1_compressed.pt"),
]


def models_dir() -> Path:
    """Local model folder: `$WORLDR1_MODELS`, else `./models` (one subfolder per repo id)."""
    return Path(os.environ.get("WORLDR1_MODELS", "models"))


def locate(repo_id_or_path: str, marker: str | None = None) -> Path | None:
    """A local snapshot of a model: an explicit path, `models_dir()/<repo id>`, or the HF cache.

    Only looks; never downloads (the cache lookup is `local_files_only`).
    """
    direct = Path(repo_id_or_path).expanduser()
    for candidate in (direct, models_dir() / repo_id_or_path):
        if candidate.is_dir() and (marker is None or (candidate / marker).exists()):
            return candidate
    if repo_id_or_path.count("/") != 1 or direct.is_absolute():
        return None
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id_or_path, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here means "not in the cache"
        return None
    return path if marker is None or (path / marker).exists() else None


def require(repo_id_or_path: str, marker: str | None = None) -> Path:
    found = locate(repo_id_or_path, marker)
    if found is None:
        what = f"model {repo_id_or_path}" + (f" ({marker})" if marker else "")
        raise UserError(
            f"{what} not found locally (looked in {models_dir() / repo_id_or_path} and the Hugging Face cache)",
            f"download it on a machine with internet (huggingface-cli download {repo_id_or_path}) and copy it there, "
            "or set WORLDR1_MODELS",
        )
    return found
