"""The toy world: seeded procedural Gaussian scenes, their prompts, camera paths, renders and the
deliberately 3D-inconsistent clips that the embedded default profile's toy models learn from."""

from worldr1.toyworld.corrupt import ClipPlan, Corruption, ToyClip, make_clip, plan_clip, render_clip
from worldr1.toyworld.prompt import toy_prompt
from worldr1.toyworld.render import (
    Reprojection,
    ToyVideo,
    pair_check,
    render_scenes,
    render_video,
    reprojection_check,
    toy_cameras,
    toy_motion_scale,
)
from worldr1.toyworld.scene import ToyObject, ToyScene, make_scene, toy_scene_gaussians

__all__ = [
    "ClipPlan",
    "Corruption",
    "Reprojection",
    "ToyClip",
    "ToyObject",
    "ToyScene",
    "ToyVideo",
    "make_clip",
    "make_scene",
    "pair_check",
    "plan_clip",
    "render_clip",
    "render_scenes",
    "render_video",
    "reprojection_check",
    "toy_cameras",
    "toy_motion_scale",
    "toy_prompt",
    "toy_scene_gaussians",
]
