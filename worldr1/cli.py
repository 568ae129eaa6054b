"""The `worldr1` command: doctor, prompts, rounds, profile, enhance, sample, score, audit. Its errors are the
stages' (worldr1/stagekit.py): one line, exit 2."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from worldr1 import config, store
from worldr1.errors import UserError
from worldr1.rewards.terms import names
from worldr1.stagekit import err, fail, out, progress_bar

try:  # typer >= 0.2x runs its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
prompts_app = typer.Typer(no_args_is_help=True, help="Look at the prompts table.")
rounds_app = typer.Typer(no_args_is_help=True, help="Edit the rounds of params.yaml.")
profile_app = typer.Typer(no_args_is_help=True, help="Model profiles: toy (default), tiny, wan2.1-1.3b, wan2.1-14b.")
app.add_typer(prompts_app, name="prompts")
app.add_typer(rounds_app, name="rounds")
app.add_typer(profile_app, name="profile")

ParamsOpt = Annotated[Path, typer.Option("--params", help="params file")]


def main() -> None:
    try:
        app(standalone_mode=False)
    except UserError as error:
        fail(error)
    except click_errors.NoArgsIsHelpError as error:
        error.show()  # a bare group: its help, as click shows it
        raise SystemExit(error.exit_code) from None
    except click_errors.UsageError as error:
        fail(usage_error(error))
    except typer.Abort:  # Ctrl-C at a prompt
        raise SystemExit(1) from None


def usage_error(error: click_errors.UsageError) -> UserError:
    """click's usage errors as our one line: what was wrong, and where the command's help is."""
    command = error.ctx.command_path if error.ctx is not None else "worldr1"
    message = error.format_message().rstrip(".")
    if ". Did you mean " in message:  # "no such command 'ad'. Did you mean 'add'?"
        message = message.replace(". Did you mean ", " (did you mean ") + ")"
    if message.startswith("No such option: -") and message.removeprefix("No such option: -").replace(".", "").isdigit():
        return UserError(
            f"{command}: {message} (a leading '-' makes it an option)", f"counts are positive, e.g. {command} 1"
        )
    return UserError(f"{command}: {message[0].lower()}{message[1:]}", f"see {command} --help")


# ---------------------------------------------------------------------------------------------
# doctor


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "[red]not installed[/]"


@app.command()
def doctor(params: ParamsOpt = Path(config.PARAMS_FILE)) -> None:
    """What this machine has: Python, torch and its devices, the libraries, DVC, model weights."""
    import torch

    from worldr1.weights import KNOWN_MODELS, locate, models_dir

    env = Table(title="environment", show_header=False)
    env.add_row("python", f"{platform.python_version()} ({sys.executable})")
    env.add_row("worldr1", store.git_version())
    env.add_row("torch", torch.__version__)
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        env.add_row("device", f"cuda: {names} (bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'})")
    else:
        env.add_row("device", "cpu (no cuda): the toy profile runs here; Wan 2.1 needs a GPU")
    for package in (
        "diffusers",
        "transformers",
        "peft",
        "gsplat",
        "open-clip-torch",
        "dvc",
        "pyarrow",
        "depth-anything-3",
    ):
        env.add_row(package, _version(package))
    try:
        p = config.load(params)
        env.add_row("params", f"{params}: valid, policy={p.policy.model}, {len(p.rounds)} round(s)")
    except UserError as error:
        env.add_row("params", f"[red]{error.line()}[/]")
    out.print(env)

    models = Table(title=f"model weights (local: {models_dir()}, or the Hugging Face cache)")
    models.add_column("model")
    models.add_column("for")
    models.add_column("found at", overflow="fold")
    for m in KNOWN_MODELS:
        where = locate(m.repo_id, m.marker)
        models.add_row(m.repo_id, m.role, str(where) if where else f"[yellow]missing[/] ({m.marker})")
    out.print(models)


# ---------------------------------------------------------------------------------------------
# prompts


@prompts_app.command("show")
def prompts_show(
    split: Annotated[str | None, typer.Option(help="train, dynamic or test")] = None,
    camera: Annotated[
        str | None, typer.Option(help="a primitive (push_in, orbit_left, ...), or 'none' for unparsed")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="rows in the sample table")] = 10,
    root: Annotated[str, typer.Option(help="project root or fsspec URL holding data/")] = ".",
) -> None:
    """Counts per split and camera move, and a sample of the prompts table."""
    from worldr1.prompts import Primitive

    if split is not None and split not in {"train", "dynamic", "test"}:
        raise UserError(f"unknown split {split!r}", "use --split train, dynamic or test")
    known = {p.value for p in Primitive}
    if camera is not None and camera not in known | {"none"}:
        raise UserError(f"unknown camera move {camera!r}", f"use one of {', '.join(sorted(known))} or none")
    rows = store.read_table(store.Paths(root).prompts, store.PROMPTS).to_pylist()
    if split:
        rows = [r for r in rows if r["split"] == split]
    if camera == "none":
        rows = [r for r in rows if not r["camera"]]
    elif camera:
        rows = [r for r in rows if camera in r["camera"]]

    counts = Table(title=f"{len(rows)} prompts")
    counts.add_column("split")
    counts.add_column("prompts", justify="right")
    counts.add_column("camera parsed", justify="right")
    counts.add_column("no camera", justify="right")
    for name in ("train", "dynamic", "test"):
        of = [r for r in rows if r["split"] == name]
        if of:
            parsed = sum(1 for r in of if r["camera"])
            counts.add_row(name, str(len(of)), str(parsed), str(len(of) - parsed))
    out.print(counts)

    moves = Counter(m for r in rows for m in r["camera"])
    if moves:
        by_move = Table(title="camera moves (segments)")
        by_move.add_column("move")
        by_move.add_column("count", justify="right")
        for move, n in moves.most_common():
            by_move.add_row(move, str(n))
        out.print(by_move)

    if limit and rows:
        sample = Table(title=f"first {min(limit, len(rows))}", show_lines=False)
        sample.add_column("prompt_id", no_wrap=True)
        sample.add_column("split")
        sample.add_column("camera")
        sample.add_column("text", overflow="ellipsis", no_wrap=True, max_width=80)
        for r in rows[:limit]:
            sample.add_row(
                r["prompt_id"], r["split"], " > ".join(r["camera"]) or f"- ({r['camera_reason']})", r["text"]
            )
        out.print(sample)


# ---------------------------------------------------------------------------------------------
# rounds


@rounds_app.command("add")
def rounds_add(
    count: Annotated[int, typer.Argument(help="how many rounds to append")],
    params: ParamsOpt = Path(config.PARAMS_FILE),
) -> None:
    """Append COUNT rounds to params.yaml (each continuing the last; phases from `schedule`)."""
    from worldr1.rounds import add_rounds

    for name, prev, phase in add_rounds(params, count):
        out.print(f"added {name}: prev={prev}, phase={phase}")


@profile_app.command("use")
def profile_use(
    name: Annotated[str, typer.Argument(help="the profile: toy, tiny, wan2.1-1.3b or wan2.1-14b")],
    params: ParamsOpt = Path(config.PARAMS_FILE),
) -> None:
    """Rewrite params.yaml from profile NAME, keeping its rounds (then `dvc repro` reruns what changed)."""
    from worldr1.profiles import use_profile

    use_profile(params, name)
    out.print(f"{params} now holds profile {name} (rounds kept)")


@profile_app.command("list")
def profile_list() -> None:
    """The profiles shipped with worldr1."""
    from worldr1.profiles import available

    for name in available():
        out.print(name)


# ---------------------------------------------------------------------------------------------
# sample


@app.command("sample")
def sample_to_mp4(
    prompt: Annotated[str, typer.Argument(help="the prompt, camera sentence first")],
    adapter: Annotated[
        Path | None, typer.Option(help="a policy directory (data/rounds/rNNN/policy); none: base")
    ] = None,
    out: Annotated[Path, typer.Option(help="mp4 to write")] = Path("sample.mp4"),
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="noise seed")] = 0,
    params: ParamsOpt = Path(config.PARAMS_FILE),
) -> None:
    """Render one prompt with the policy of params (and an adapter) to an mp4, by the ODE sampler."""
    if out.suffix.lower() != ".mp4":
        raise UserError(f"--out {out} is not an .mp4 path", "name the output file something.mp4")
    if adapter is not None and not adapter.is_dir():
        what = "is a file, not an adapter folder" if adapter.exists() else "not found"
        raise UserError(f"--adapter {adapter} {what}", "pass a round's policy folder, e.g. data/rounds/r000/policy")
    p = config.load(params)
    import torch  # after the checks: a wrong argument is refused before seconds of imports

    from worldr1.grpo.sampler import Schedule, sample
    from worldr1.policy import load_policy
    from worldr1.video import write_mp4

    ro = p.rollout
    policy = load_policy(p.policy)
    if adapter is not None:
        policy.attach_adapter(p.policy, p.seed, adapter)
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    shape = policy.latent_shape(ro.frames, ro.height, ro.width)
    cond = policy.encode([prompt])
    uncond = policy.encode([ro.negative_prompt]) if ro.cfg > 1 else None
    traj = sample(
        policy, cond, uncond, [torch.Generator().manual_seed(seed)], shape, schedule, ro.cfg, ro.sde, steps=[]
    )
    write_mp4(out, policy.decode(traj.final)[0].cpu().numpy(), ro.fps)
    what = f"policy {policy.name}" + (f" + {adapter}" if adapter else "")
    err.print(f"wrote {out} ({ro.frames} frames, {ro.height}x{ro.width}, {what})", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# enhance


@app.command("enhance")
def enhance_one(
    text: Annotated[str, typer.Argument(help="a plain prompt, e.g. 'a red barn in a wheat field'")],
    moves: Annotated[
        str | None, typer.Option(help="the camera sentence's moves, e.g. 'orbit left, then pull out'; none: drawn")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="local or openai; none: prompts.enhance.backend")] = None,
    model: Annotated[str | None, typer.Option(help="a model folder, repo id or served model; none: params'")] = None,
    url: Annotated[str | None, typer.Option(help="the endpoint's base URL (openai); none: params'")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="the draw of moves and the sampling")] = 0,
    params: ParamsOpt = Path(config.PARAMS_FILE),
) -> None:
    """Enhance one plain prompt with the settings of prompts.enhance and print it (nothing is cached)."""
    from worldr1.enhance.cache import LineCache
    from worldr1.enhance.camera_mix import CameraMix
    from worldr1.enhance.chat import open_chat
    from worldr1.enhance.check import Bounds
    from worldr1.enhance.enhancer import Job, enhance
    from worldr1.ids import normalize_text
    from worldr1.prompts.camera import parse_camera

    p = config.load(params)
    overrides = {k: v for k, v in {"backend": backend, "model": model, "url": url}.items() if v is not None}
    cfg = config.validate_group(
        config.EnhanceConfig, p.prompts.enhance.model_dump() | overrides, "prompts.enhance", str(params)
    )
    if not cfg.model:
        raise UserError("no model to ask: prompts.enhance.model is empty", "pass --model or set it in params.yaml")
    if cfg.backend == "openai" and not cfg.url:
        raise UserError(
            "backend openai needs the endpoint's URL",
            "pass --url (e.g. http://127.0.0.1:8000/v1) or set prompts.enhance.url",
        )
    plain = normalize_text(text)
    if not plain:
        raise UserError("the prompt is empty", "give the plain prompt as the argument")
    if moves is None:
        chosen = CameraMix.from_config(cfg.camera_mix).draw(seed, plain)
    else:
        parsed = parse_camera(f"Camera {moves.strip().removeprefix('Camera ').rstrip('.')}.")
        if not parsed.ok:
            raise UserError(
                f"--moves {moves!r}: {parsed.reason}", "give moves like 'push in' or 'orbit left, then pull out'"
            )
        chosen = parsed.primitives
    chat = open_chat(cfg)
    outcome = enhance(
        [Job("<command line>", 1, plain, chosen)],
        chat,
        Bounds(cfg.min_chars, cfg.max_chars),
        cfg.attempts,
        LineCache(),
        seed,
    ).outcomes[0]
    if outcome.output is None:
        err.print(
            f"no answer passed the check in {outcome.attempts} attempts; the last: {outcome.reason}",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1)
    out.print(outcome.output, highlight=False, soft_wrap=True, markup=False)
    err.print(f"({chat.identity}, attempt {outcome.attempts})", highlight=False, soft_wrap=True, markup=False)


# ---------------------------------------------------------------------------------------------
# score


@app.command("score")
def score_videos(
    videos: Annotated[list[Path], typer.Argument(help="video files (mp4 or anything ffmpeg reads)")],
    prompt: Annotated[str, typer.Option("--prompt", help="the videos' prompt, camera sentence first")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="a rewards .parquet to write (worldr1 audit reads it)")
    ] = None,
    max_frames: Annotated[
        int, typer.Option("--max-frames", min=2, help="longer videos are subsampled evenly to this")
    ] = 49,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="a new folder to keep geometry and renders in, as a round")
    ] = None,
    params: ParamsOpt = Path(config.PARAMS_FILE),
) -> None:
    """3D-consistency reward of any videos, with the reconstruct and score stages' code and params."""
    import tempfile

    from rich.markup import escape

    from worldr1.score_video import VideoScorer, check_prompt, read_video

    if out_file is not None and (out_file.suffix.lower() != ".parquet" or out_file.is_dir()):
        raise UserError(f"--out {out_file} is not a .parquet file path", "name the output file something.parquet")
    if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise UserError(f"--keep {keep} exists and is not an empty folder", "pass a new folder: it is written whole")
    parse = check_prompt(prompt)
    p = config.load(params)
    clips = [read_video(v, max_frames) for v in videos]
    scorer = VideoScorer(p)
    with contextlib.ExitStack() as stack:
        work = (
            stack.enter_context(store.atomic_dir(keep))
            if keep
            else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        with progress_bar("score") as tick:
            scored = scorer.score(clips, prompt, work, tick, novel_path=keep is not None)
        if keep:
            scorer.keep(scored, clips, work)
    if out_file is not None:
        store.write_table(str(out_file), scored.rewards, store.REWARDS, scorer.provenance)
    camera = " > ".join(m.value for m in parse.primitives) or f"none ({parse.reason})"
    table = Table(title=f"phase 3d, camera: {escape(camera)}")
    table.add_column("term")
    rows = scored.rewards.to_pylist()
    for r in rows:
        table.add_column(escape(r["sample_id"]), justify="right", overflow="fold")
    table.add_row("file", *[escape(str(c.path)) for c in clips])
    table.add_row("frames", *[f"{len(c.frames)} of {c.total_frames}" for c in clips])
    table.add_row("size, fps", *[f"{c.frames.shape[2]}x{c.frames.shape[1]}, {c.fps:.3g}" for c in clips])
    table.add_row("status", *["ok" if r["status"] == "ok" else f"[red]{escape(r['status'])}[/]" for r in rows])
    for term in ("reward", *names(), "psnr", "ssim", "lpips", "reproj_psnr", "motion", "motion_factor"):
        table.add_row(term, *["-" if r[term] is None else f"{r[term]:.3f}" for r in rows])
    for note in ("s_traj_reason", "error"):
        if any(r[note] for r in rows):
            table.add_row(note, *[escape(r[note] or "") for r in rows])
    out.print(table)
    wrote = [f"rewards to {out_file}"] if out_file is not None else []
    wrote += [f"the round folder {keep}"] if keep else []
    if wrote:
        err.print(f"wrote {' and '.join(wrote)}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# audit


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _term_table(title: str, groups: dict, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("n", justify="right")
    for c in columns:
        table.add_column(c, justify="right")
    for name, stats in groups.items():
        table.add_row(name, str(max(s.n for s in stats.values())), *[_fmt(stats[c].mean) for c in columns])
    return table


@app.command()
def audit(
    paths: Annotated[list[str], typer.Argument(help="rewards.parquet files, globs or fsspec URLs")],
    compare: Annotated[bool, typer.Option("--compare", help="compare the first file (A) with the second (B)")] = False,
    top: Annotated[int, typer.Option(min=0, help="best and worst samples to list")] = 5,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="OUT",
            help="also write a self-contained HTML report (statistics, histograms, "
            "sample cards with their videos and renders) to OUT",
        ),
    ] = None,
    cards: Annotated[int, typer.Option(min=0, help="--html: best, worst and failed samples (each) shown as cards")] = 4,
) -> None:
    """Why did samples score what they scored? Offline summaries of reward artifacts."""
    from worldr1 import audit as au

    columns = ("reward", *names(), "motion")
    if compare and html is not None:
        raise UserError("--html reports files, not a --compare", "drop --compare, or run the two separately")
    if compare:
        files = au.expand(paths)
        if len(files) != 2:
            raise UserError(f"--compare needs exactly two files, got {len(files)}", "worldr1 audit --compare A B")
        a, b = (au.per_term(au.ok_rows(au.load([f]))) for f in files)
        table = Table(title=f"A = {files[0]}\nB = {files[1]}")
        for col in ("term", "A", "B", "B - A"):
            table.add_column(col, justify="right")
        for c in au.COLUMNS:
            mean_a, mean_b = a[c].mean, b[c].mean
            delta = None if mean_a is None or mean_b is None else mean_b - mean_a
            table.add_row(c, _fmt(a[c].mean), _fmt(b[c].mean), _fmt(delta))
        out.print(table)
        return
    data = au.load(paths)
    rows = au.ok_rows(data)
    failed = [r for r in data.to_pylist() if r["status"] != "ok"]
    summary = Table(title=f"{data.num_rows} samples, {len(failed)} failed")
    for col in ("term", "n", "mean", "std", "min", "max"):
        summary.add_column(col, justify="right")
    for c, s in au.per_term(rows).items():
        summary.add_row(c, str(s.n), _fmt(s.mean), _fmt(s.std), _fmt(s.lo), _fmt(s.hi))
    out.print(summary)
    out.print(_term_table("by camera move", au.by_key(rows, lambda r: r["camera"] or ["(none)"]), columns))
    out.print(_term_table("by phase", au.by_key(rows, lambda r: [r["phase"]]), columns))
    out.print(_term_table("by round", au.by_key(rows, lambda r: [r["round"]]), columns))
    best, worst = au.ranked(rows, top)
    for title, chosen in (("best", best), ("worst", worst)):
        if not chosen:
            continue
        t = Table(title=f"{title} {len(chosen)}")
        for col in ("sample_id", *columns, "prompt"):
            t.add_column(col, overflow="ellipsis", no_wrap=col == "prompt", max_width=48 if col == "prompt" else None)
        for r in chosen:
            t.add_row(r["sample_id"], *[_fmt(r[c]) for c in columns], r["prompt"])
        out.print(t)
    if failed:
        reasons = Counter(str(r["error"]).split(":")[0] for r in failed)
        t = Table(title="failures")
        t.add_column("reason")
        t.add_column("count", justify="right")
        for reason, n in reasons.most_common():
            t.add_row(reason, str(n))
        out.print(t)
    if html is not None:
        from worldr1.audit.html import write_html

        written = write_html(paths, html, cards=cards)
        missing = f", {written.missing_media} media not embedded (the cards say why)" if written.missing_media else ""
        err.print(
            f"wrote {written.path} ({written.cards} cards, {written.size / 1e6:.1f} MB{missing})",
            highlight=False,
            soft_wrap=True,
        )
