"""Typed params: `params.yaml` loaded into frozen pydantic models and validated.

Every knob is explicit in params.yaml (no defaults here): DVC tracks each stage's params by
key, so a value that hid behind a code default would change results without rerunning
anything. A bad file becomes one `UserError` line naming the key path and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from worldr1.errors import UserError
from worldr1.rewards.terms import REWARD_TERMS, RewardTerm

PARAMS_FILE = "params.yaml"

Split = Literal["train", "dynamic", "test"]
Phase = Literal["3d", "dynamic"]
ROUND_NAME = re.compile(r"^r\d{3}$")

# allow_inf_nan=False: YAML's .inf and .nan are floats, and would turn camera paths and latents into NaNs.
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class Group(BaseModel):
    # strict: YAML's `"8"` must not silently become 8; extra=forbid: a typo is an error, not a no-op.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PromptSourceConfig(Group):
    path: str = Field(min_length=1)
    split: Split


class PromptGeneratorConfig(Group):
    """Template prompts (scene x subject x light x camera move) for users without a prompt set."""

    count: Annotated[int, Field(ge=0, le=1_000_000)]
    split: Split


class ToyPromptsConfig(Group):
    """Toy-world prompts (a seeded scene and camera moves each) for the toy profile."""

    train: Annotated[int, Field(ge=0, le=1_000_000)]
    test: Annotated[int, Field(ge=0, le=1_000_000)]


class EnhanceConfig(Group):
    """The enhance stage: plain prompt files rewritten by an LLM into camera-first prompts."""

    sources: list[PromptSourceConfig]
    backend: Literal["local", "openai"]
    #: local: a folder or an HF-cache repo id; openai: the served model's name
    model: str
    #: openai: the API's base URL (…/v1)
    url: str
    #: openai: the environment variable that holds the API key ("" for a server without one)
    api_key_env: Annotated[str, Field(pattern=r"^(?:[A-Za-z_][A-Za-z0-9_]*)?$")]
    temperature: NonNegFloat
    max_new_tokens: PosInt
    attempts: Annotated[int, Field(ge=1, le=20)]
    min_chars: PosInt
    max_chars: PosInt
    batch: PosInt
    concurrency: Annotated[int, Field(ge=1, le=256)]
    timeout_s: PosFloat
    retries: Annotated[int, Field(ge=0, le=20)]
    backoff_s: NonNegFloat
    #: camera sentence (without "Camera" and the full stop) -> weight
    camera_mix: dict[str, PosFloat]

    @field_validator("camera_mix")
    @classmethod
    def _mix_parses(cls, mix: dict[str, float]) -> dict[str, float]:
        from worldr1.prompts.camera import parse_camera  # the grammar, only when a mix is validated

        for sentence in mix:
            parsed = parse_camera(f"Camera {sentence}.")
            if not parsed.ok:
                raise ValueError(f"camera_mix key {sentence!r} is not a camera sentence: {parsed.reason}")
        return mix

    @model_validator(mode="after")
    def _usable(self) -> EnhanceConfig:
        if self.min_chars >= self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must be under max_chars ({self.max_chars})")
        if not self.camera_mix:
            raise ValueError("camera_mix is empty: give at least one camera sentence and its weight")
        stems: dict[str, str] = {}
        for src in self.sources:
            stem = Path(src.path).stem
            if stem in stems:
                raise ValueError(
                    f"sources {stems[stem]} and {src.path} would both write enhanced/{stem}.txt: rename one"
                )
            stems[stem] = src.path
        if self.sources and not self.model:
            raise ValueError("sources are listed but model is empty: name a model folder, repo id or served model")
        if self.sources and self.backend == "openai" and not re.match(r"^https?://\S+$", self.url):
            raise ValueError(
                f"backend openai needs url, the API's base URL like http://127.0.0.1:8000/v1 (got {self.url!r})"
            )
        return self


class PromptsConfig(Group):
    sources: list[PromptSourceConfig]
    generator: PromptGeneratorConfig
    toy: ToyPromptsConfig
    enhance: EnhanceConfig
    max_chars: Annotated[int, Field(ge=16, le=100_000)]
    batch_per_round: PosInt

    @model_validator(mode="after")
    def _some_source(self) -> PromptsConfig:
        if (
            not self.sources
            and not self.enhance.sources
            and self.generator.count == 0
            and self.toy.train + self.toy.test == 0
        ):
            raise ValueError(
                "no prompt source: list files under prompts.sources or prompts.enhance.sources, or set "
                "prompts.generator.count or prompts.toy counts > 0"
            )
        if self.enhance.max_chars > self.max_chars:
            raise ValueError(
                f"enhance.max_chars ({self.enhance.max_chars}) is over max_chars ({self.max_chars}), "
                "which would skip enhanced prompts it allows"
            )
        return self


class CameraConfig(Group):
    """Sizes of World-R1's synthetic pose segments (translations in its arbitrary scene units)."""

    push: PosFloat
    move: PosFloat
    pan_deg: Annotated[float, Field(gt=0, lt=180)]
    orbit_deg: Annotated[float, Field(gt=0, le=180)]
    orbit_radius: PosFloat


class LoraConfig(Group):
    rank: PosInt
    alpha: PosFloat
    targets: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class PolicyConfig(Group):
    model: str = Field(min_length=1)
    dtype: Literal["auto", "float32", "bfloat16"]
    #: the attention kernel of rollout and update alike: auto (torch's FlashAttention; its
    #: memory-efficient kernel on cuda in float32) or a diffusers backend name (policy/attention.py)
    attention: str = Field(min_length=1)
    lora: LoraConfig


class SdeConfig(Group):
    kind: Literal["flow_grpo", "cps"]
    # Above ~1.4 the SDE mean's coefficient on x turns negative at the first step; Flow-GRPO uses 0.7.
    noise_level: Annotated[float, Field(gt=0, le=1)]
    #: SDE on this high-noise fraction of the steps, ODE on the rest...
    train_fraction: Fraction
    #: ...or, when > 0, on a random window of this many steps inside it (Flow-GRPO-Fast).
    window: Annotated[int, Field(ge=0, le=16)]


class RolloutConfig(Group):
    group_size: Annotated[int, Field(ge=2)]
    steps: PosInt
    shift: PosFloat
    sde: SdeConfig
    cfg: NonNegFloat
    negative_prompt: str
    frames: PosInt
    height: PosInt
    width: PosInt
    fps: PosInt
    camera_init: bool
    #: A prompt's group starts from one initial noise, so its samples differ only by the noise of
    #: their SDE steps: the only noise the update's log-probs credit (benchmarks/sde_credit.py).
    shared_noise: bool

    @model_validator(mode="after")
    def _cps_last_step(self) -> RolloutConfig:
        # CPS puts no noise on the step to sigma = 0, so that step has no log-prob to train.
        if self.sde.kind == "cps" and math.ceil(round(self.sde.train_fraction * self.steps, 9)) >= self.steps:
            raise ValueError("with sde.kind cps the last step cannot be trained: lower sde.train_fraction below 1")
        return self

    @field_validator("frames")
    @classmethod
    def _wan_frames(cls, v: int) -> int:
        # Wan's VAE compresses time by 4 and keeps the first frame: only 4k+1 frames round-trip.
        if (v - 1) % 4:
            raise ValueError(
                f"must be 4k+1 for Wan's VAE, e.g. {4 * ((v - 1) // 4) + 1} or {4 * ((v - 1) // 4 + 1) + 1}"
            )
        return v

    @field_validator("height", "width")
    @classmethod
    def _wan_pixels(cls, v: int) -> int:
        # 8x VAE downsampling then 2x2 patches.
        if v % 16:
            raise ValueError(f"must be a multiple of 16 (VAE x8, patch x2), e.g. {16 * max(1, round(v / 16))}")
        return v


class ReconstructConfig(Group):
    backend: Literal["da3", "toy"]
    #: da3: tiny (DA3-SMALL's architecture, random weights), da3-small/base/large/giant, a repo id or a
    #: folder; toy: `toy`, the reconstructor the toy-pretrain stage trains
    model: str = Field(min_length=1)
    process_res: Annotated[int, Field(ge=28, le=2048)]
    renderer: Literal["auto", "gsplat", "torch"]
    #: the least confident share of pixels (percent) that does not become Gaussians
    conf_percentile: Annotated[float, Field(ge=0, lt=100)]
    #: a pixel between two depth layers differing by more than this share of its depth is a
    #: "flying pixel" and makes no Gaussian (0: keep all); low resolutions need more
    edge_rel: NonNegFloat
    #: pixel-aligned Gaussians per video at most (the pixel grid is thinned to fit)
    max_gaussians: Annotated[int, Field(ge=1000)]
    #: build the scene from even frames only, so odd input cameras are held-out views
    holdout: bool


def reward_weights_model(terms: Sequence[RewardTerm] = REWARD_TERMS) -> type[Group]:
    """`reward.weights`: one non-negative weight per term of the registry, each required."""
    fields: dict[str, Any] = {t.name: (NonNegFloat, ...) for t in terms}
    return create_model("RewardWeightsConfig", __base__=Group, __module__=__name__, **fields)


if TYPE_CHECKING:

    class RewardWeightsConfig(Group):  # what a type checker sees: the fields come from the registry
        def __getattr__(self, name: str) -> float: ...
else:
    RewardWeightsConfig = reward_weights_model()


class ReprojConfig(Group):
    """`s_reproj`: every frame warped into every other by the reconstructed depth and cameras."""

    #: both frames low-passed by a Gaussian of this std (pixels of the depth maps) before comparing
    blur: NonNegFloat
    #: a pixel is off when a colour channel differs by more than this (in [0, 1])
    tolerance: Annotated[float, Field(gt=0, lt=1)]
    #: frames compared at most (evenly spaced): pairs grow with the square of it
    max_frames: Annotated[int, Field(ge=2, le=64)]
    #: Adam steps of photometric refinement of the reconstruction's cameras before the warp
    #: (`geometry.refine`); 0 takes them as the reconstructor gave them
    refine_steps: Annotated[int, Field(ge=0, le=1000)]
    #: a pixel matches when any pixel of the other frame's warp within this many pixels does: a
    #: geometry off by that much is no error, a changed object still is (0: the pixel itself)
    radius: Annotated[int, Field(ge=0, le=3)]
    #: s_reproj = 1 - bad / max(bad, unwarped bad + relative): the share of pixels the geometry leaves
    #: off, against the share off with no geometry (frames compared unwarped); None: 1 - bad
    relative: Annotated[float, Field(gt=0, le=1)] | None


class RewardConfig(Group):
    weights: RewardWeightsConfig
    recon_metric: Literal["lpips", "ssim"]
    reproj: ReprojConfig
    #: mean absolute change between consecutive frames (in [0, 1]) below which a moving prompt's
    #: video loses its 3D terms in proportion
    motion_floor: NonNegFloat
    #: the s_meta judge: off, tiny (random Qwen3-VL for tests), qwen3-vl-4b, a repo id or a folder
    judge: str = Field(min_length=1)
    #: the r_gen model: hpsv2.1 (World-R1's), sharpness (the toy profiles' stand-in), hpsv2.1-tiny (random, for tests)
    quality: Literal["sharpness", "hpsv2.1", "hpsv2.1-tiny"]
    #: r_gen counts in the reward up to this value and no further (None: no cap); its column keeps
    #: the measured value, so evaluate's quality check sees every change
    quality_cap: Annotated[float, Field(gt=0)] | None


class EmaConfig(Group):
    enabled: bool
    decay: Annotated[float, Field(ge=0, lt=1)]


class GrpoConfig(Group):
    lr: PosFloat
    betas: Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]
    weight_decay: NonNegFloat
    clip: Annotated[float, Field(gt=0, lt=1)]
    beta: NonNegFloat
    adv_clip: PosFloat
    #: whose std scales a group's centred rewards: the group's (World-R1) or the round's (Flow-GRPO)
    adv_std: Literal["group", "global"]
    inner_epochs: PosInt
    minibatch_samples: PosInt
    grad_clip: PosFloat
    #: The lr rises linearly over the first this many optimizer steps of the whole run (0: off).
    #: AdamW's first steps are sign steps of size lr in every coordinate, whatever the gradient's
    #: signal-to-noise ratio (benchmarks/learning_probe.py: the round-0 dip).
    warmup_steps: Annotated[int, Field(ge=0)]
    ema: EmaConfig


class ScheduleConfig(Group):
    """World-R1's dynamic fine-tuning: after every `main_steps` optimizer steps, `dynamic_steps` more."""

    main_steps: PosInt
    dynamic_steps: Annotated[int, Field(ge=0)]


class RoundItemConfig(Group):
    prev: str
    phase: Phase


class EvaluateConfig(Group):
    """The evaluate stage: `policy` (a round, kept at the last one by `rounds add`) against base."""

    policy: str
    prompts: PosInt
    ema: bool


class ProbeConfig(Group):
    """The probe stage: each round's policy on a fixed set of train prompts and seeds (the reward curve
    without the prompt noise of each round's own batch)."""

    #: the first train prompts of the prompts table
    prompts: PosInt
    #: ODE samples per prompt, each from its own fixed noise
    seeds: Annotated[int, Field(ge=1, le=64)]


class ValidityConfig(Group):
    """The reward-validity stage: held-out labelled toy clips scored by the reward (toy profile)."""

    #: seeds, each a sound clip and its broken twins
    clips: Annotated[int, Field(ge=2, le=100_000)]
    #: score the suite with its true geometry too (what the instrument sees with a perfect reconstructor)
    true_geometry: bool


class ToyDataConfig(Group):
    """The toy-data stage's clips: procedurally rendered, a share made 3D-inconsistent on purpose."""

    clips: Annotated[int, Field(ge=8, le=1_000_000)]
    frames: Annotated[int, Field(ge=2, le=257)]
    height: Annotated[int, Field(ge=8, le=1024)]
    width: Annotated[int, Field(ge=8, le=1024)]
    inconsistent_share: Annotated[float, Field(ge=0, le=1)]
    #: sub-pixel rays per side of a pixel when the clips are ray cast (anti-aliasing)
    supersample: Annotated[int, Field(ge=1, le=8)]
    #: render processes (one torch thread each)
    workers: PosInt


class TrainingConfig(Group):
    steps: PosInt
    batch: PosInt
    lr: PosFloat


class ToyPolicyNetConfig(Group):
    """The toy policy's frame autoencoder (4x smaller frames), WanTransformer3DModel and word encoder."""

    latent_channels: PosInt
    autoencoder_width: Annotated[int, Field(ge=8, multiple_of=8)]
    patch: PosInt
    heads: PosInt
    head_dim: PosInt
    ffn_dim: PosInt
    layers: PosInt
    text_dim: PosInt
    max_words: PosInt

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim


class ToyPolicyPretrainConfig(Group):
    net: ToyPolicyNetConfig
    autoencoder: TrainingConfig
    train: TrainingConfig
    #: share of training prompts replaced by the empty prompt, so CFG has an unconditional model
    text_dropout: Annotated[float, Field(ge=0, lt=1)]
    #: the saved weights are this EMA of the trained ones
    ema_decay: Annotated[float, Field(ge=0, lt=1)]


class ToyReconstructorNetConfig(Group):
    width: PosInt
    levels: PosInt  # halvings of the depth U-Net


class ToyReconstructorPretrainConfig(Group):
    net: ToyReconstructorNetConfig
    train: TrainingConfig


class ToyClassifierNetConfig(Group):
    width: PosInt


class ToyClassifierPretrainConfig(Group):
    """The toy consistency classifier (evaluate's check that owes nothing to the reward)."""

    net: ToyClassifierNetConfig
    train: TrainingConfig
    #: labelled clips of seeds of their own, half of them inconsistent, for the held-out accuracy
    heldout: Annotated[int, Field(ge=2, le=100_000)]


class ToyConfig(Group):
    """The toy world's data and the models trained on it: the toy-pretrain stage's policy and
    reconstructor, the toy-classifier stage's consistency classifier."""

    data: ToyDataConfig
    policy: ToyPolicyPretrainConfig
    reconstructor: ToyReconstructorPretrainConfig
    classifier: ToyClassifierPretrainConfig


class Params(Group):
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    prompts: PromptsConfig
    camera: CameraConfig
    policy: PolicyConfig
    rollout: RolloutConfig
    reconstruct: ReconstructConfig
    reward: RewardConfig
    grpo: GrpoConfig
    schedule: ScheduleConfig
    # What runs a heavy stage's script (python, or torchrun/srun for several ranks): worldr1/launch.py.
    launch: Annotated[str, Field(min_length=1, pattern=r"^[^\n]*\S[^\n]*$")]
    # The update over several ranks: shard the frozen transformer with FSDP instead of a whole copy
    # per rank (Wan 14B). Like launch, no stage's param: the numbers are the same either way.
    fsdp: bool
    evaluate: EvaluateConfig
    probe: ProbeConfig
    validity: ValidityConfig
    toy: ToyConfig
    rounds: dict[str, RoundItemConfig]

    @field_validator("rounds")
    @classmethod
    def _round_chain(cls, rounds: dict[str, RoundItemConfig]) -> dict[str, RoundItemConfig]:
        seen: list[str] = []
        for name, item in rounds.items():
            if not ROUND_NAME.match(name):
                raise ValueError(f"round name {name!r} must look like r000, r001, ...")
            if seen and name <= seen[-1]:
                raise ValueError(f"round {name} comes after {seen[-1]}: keep rounds in increasing order")
            expected = seen[-1] if seen else "base"
            if item.prev != expected:
                raise ValueError(f"{name}.prev is {item.prev!r} but must be {expected!r} (the round before it)")
            seen.append(name)
        return rounds

    @model_validator(mode="after")
    def _evaluated_round(self) -> Params:
        if self.rounds and self.evaluate.policy not in self.rounds:  # no rounds yet: nothing to evaluate
            last = next(reversed(self.rounds), None)
            raise ValueError(
                f"evaluate.policy {self.evaluate.policy!r} is not a round in rounds"
                + (f" (the last is {last!r})" if last else "")
            )
        return self

    @model_validator(mode="after")
    def _toy_sizes(self) -> Params:
        # The toy models know only the clip size they were trained on.
        d, r = self.toy.data, self.rollout
        if self.policy.model == "toy" and (r.frames, r.height, r.width) != (d.frames, d.height, d.width):
            raise ValueError(
                f"rollout frames/height/width {r.frames}/{r.height}/{r.width} differ from toy.data's "
                f"{d.frames}/{d.height}/{d.width}, which the toy policy is trained on: make them equal"
            )
        if self.reconstruct.backend == "toy" and self.reconstruct.model != "toy":
            raise ValueError("reconstruct.model must be `toy` with backend toy (the toy-pretrain stage trains it)")
        return self

    @property
    def uses_toy(self) -> bool:
        """The profile has a toy model to train (the toy stages do nothing otherwise)."""
        return self.policy.model == "toy" or self.reconstruct.backend == "toy"

    @property
    def steps_per_round(self) -> int:
        """Optimizer steps one update stage takes when every group is whole: each step packs
        floor(minibatch_samples / group_size) whole groups, or one group larger than a minibatch
        (worldr1/grpo/trainer.py, group_minibatches). Fewer when groups lose samples or are skipped."""
        groups_per_step = max(1, self.grpo.minibatch_samples // self.rollout.group_size)
        return self.grpo.inner_epochs * -(-self.prompts.batch_per_round // groups_per_step)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file (YAML 1.2, so `1e-4` is a float) or raise a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path} not found", "run from the project root, or pass --params PATH")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror or exc})", "check its permissions") from None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except (YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        # The parser notices an unclosed bracket or quote only on a later line: name where it opened.
        opened, context = getattr(exc, "context_mark", None), getattr(exc, "context", None)
        if opened is not None and context and where is not None and opened.line != where.line:
            problem += f" ({context.removeprefix('while ')} that starts at line {opened.line + 1})"
        raise UserError(f"{path} is not valid YAML{at}: {problem}", "fix the syntax there") from None


G = TypeVar("G", bound=Group)


def validate(data: Any, source: str = PARAMS_FILE) -> Params:
    if data is None:
        raise UserError(
            f"{source} is empty", "restore it (git checkout params.yaml) or write one: worldr1 profile use toy"
        )
    if not isinstance(data, dict):
        raise UserError(
            f"{source} holds a YAML {type(data).__name__}, not a mapping of params groups",
            "restore it (git checkout params.yaml) or write one: worldr1 profile use toy",
        )
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key is an unknown key *and* a missing one: the unknown one is the cause.
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        cause = describe(error, source)
        if error["type"] == "extra_forbidden":
            missing = [e for e in errors if e["type"] == "missing" and e["loc"][:-1] == error["loc"][:-1]]
            if missing:
                cause += f"; {key_path(missing[0]['loc'])} is missing (did you mean it?)"
        raise UserError(cause, fix_for(error)) from None


def validate_group(group: type[G], data: Any, key: str, source: str = PARAMS_FILE) -> G:
    """One params group (at dotted `key`) validated alone, e.g. after a command line changed it."""
    try:
        return group.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        error = {**error, "loc": (*key.split("."), *error["loc"])}
        raise UserError(describe(error, source), fix_for(error)) from None


def load(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    return validate(read_yaml(path), str(path))


def key_path(loc: tuple[Any, ...]) -> str:
    """`('prompts', 'sources', 0, 'path')` -> `prompts.sources[0].path`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(error: Any, source: str) -> str:
    loc = key_path(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(error["loc"][:-1])) or "none"
        return f"{source}: {loc} is not a known key (allowed here: {allowed})"
    if kind == "missing":
        return f"{source}: {loc} is missing"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "model_type":  # "...or instance of CameraConfig": a params file knows the group as `Camera`
        name = str(error.get("ctx", {}).get("class_name", ""))
        if name:
            msg = msg.replace(name, name.removesuffix("Config"))
    msg = msg[0].lower() + msg[1:]
    value = error.get("input")
    if isinstance(value, (dict, list)):
        return f"{source}: {loc}: {msg}"
    return f"{source}: {loc}: {msg} (got {value!r})"


def fix_for(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "remove or rename that key"
    if kind == "missing":
        return "add it: every knob is explicit in params.yaml (see the shipped params.yaml for a value)"
    return "change that value in params.yaml"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Params
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None:
            # A list index or a dict key (round name): step into the item type.
            args = getattr(model, "__args__", ())
            model = args[-1] if args else model
            continue
        model = field.annotation
        for _ in range(3):  # unwrap list[...] / dict[str, ...] to the model inside
            if hasattr(model, "model_fields"):
                break
            args = getattr(model, "__args__", ())
            model = args[-1] if args else model
    return list(getattr(model, "model_fields", {}))


def section(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key path of dumped params (what DVC sees for that key)."""
    value: Any = data
    for part in key.split("."):
        value = value[part]
    return value


def params_hash(params: Params, keys: list[str]) -> str:
    """Hash of exactly the params keys a stage declares in dvc.yaml, so it changes when DVC reruns it."""
    data = params.model_dump(mode="json")
    chosen = {k: section(data, k) for k in sorted(keys)}
    blob = json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
