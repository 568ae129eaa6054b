"""Prompts: the camera-motion grammar, target camera paths, prompt import and generation."""

from worldr1.prompts.build import PromptSet, build_prompt_set
from worldr1.prompts.camera import CameraParse, Primitive, camera_sentence_for, parse_camera
from worldr1.prompts.camera_path import MotionScale, target_path

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
