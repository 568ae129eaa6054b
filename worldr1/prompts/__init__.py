"""Prompts: the camera-motion grammar, target camera paths, prompt import and generation.

The target camera path needs torch: it loads on first use, so reading the grammar (the prompts and
enhance stages) does not import torch.
"""

from typing import Any

from worldr1.prompts.build import PromptSet, build_prompt_set
from worldr1.prompts.camera import CameraParse, Primitive, camera_sentence_for, parse_camera

__all__ = [
    "CameraParse",
    "MotionScale",
    "Primitive",
    "PromptSet",
    "build_prompt_set",
    "camera_sentence_for",
    "parse_camera",
    "target_path",
]


def __getattr__(name: str) -> Any:
    if name in ("MotionScale", "target_path"):
        from worldr1.prompts import camera_path

        return getattr(camera_path, name)
    raise AttributeError(name)
