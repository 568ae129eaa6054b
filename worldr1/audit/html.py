"""One self-contained HTML page of reward artifacts, for a person to read offline.

Everything is inline (CSS, SVG histograms, media as base64 data URIs) so the file can be mailed,
attached to an issue or opened from a bucket without the round directory or a network. There is no
JavaScript: the page must render the same in any browser, and a report should not run code.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

import worldr1
from worldr1 import audit as au
from worldr1 import store
from worldr1.errors import UserError
from worldr1.rewards import terms as registry
from worldr1.rewards.terms import REWARD_TERMS

TERMS = registry.names()

#: Columns shown with a histogram and in the group tables.
HISTOGRAMS = (*TERMS, "reward", "advantage")
GROUP_COLUMNS = (*TERMS, "reward")
METRICS = (*registry.metric_columns(), "motion", "motion_factor")
COLOURS = {**registry.colours(), "reward": "#3b4252", "advantage": "#b0413e"}
#: The terms live in [0, 1]; fixed bins make histograms of different rounds comparable by eye.
UNIT_RANGE = frozenset(TERMS)
BINS = 20
#: A Wan 480x832x81 mp4 is a few MB; past this one file would make the page unusable.
MAX_MEDIA_BYTES = 20_000_000
#: Below this width media are upscaled with hard pixels instead of a blur.
SMALL_WIDTH = 256


@dataclass(frozen=True)
class Media:
    label: str
    mime: str
    data: bytes | None
    #: Why `data` is absent, in words (empty when present).
    note: str = ""


@dataclass
class RoundFiles:
    """A rewards file and the media its round directory holds beside it (rollout/ and recon/)."""

    url: str
    table: pa.Table
    videos: dict[str, str] = field(default_factory=dict)  # sample_id -> generated mp4
    renders: dict[str, str] = field(default_factory=dict)  # sample_id -> renders directory
    widths: dict[str, int] = field(default_factory=dict)
    recon_errors: dict[str, str] = field(default_factory=dict)
    #: Why the rollout or recon table could not be read; the cards repeat it.
    rollout_note: str = ""
    recon_note: str = ""


@dataclass(frozen=True)
class Written:
    path: str
    size: int
    cards: int
    missing_media: int


def _sibling(url: str, *parts: str) -> str:
    parent = url.rsplit("/", 1)[0] if "/" in url else "."
    return "/".join([parent, *parts])


def locate(url: str, table: pa.Table) -> RoundFiles:
    """Find the round's media through the rollout and recon tables, which name each sample's files."""
    rf = RoundFiles(url, table)
    rollout = _sibling(url, "rollout")
    try:
        for s in store.read_table(f"{rollout}/samples.parquet", store.SAMPLES).to_pylist():
            rf.widths[s["sample_id"]] = s["width"]
            if s["video"]:
                rf.videos[s["sample_id"]] = f"{rollout}/{s['video']}"
    except UserError as exc:
        rf.rollout_note = exc.cause
    recon = _sibling(url, "recon")
    try:
        for r in store.read_table(f"{recon}/recon.parquet", store.RECON).to_pylist():
            if r["renders"]:
                rf.renders[r["sample_id"]] = f"{recon}/{r['renders']}"
            elif r["error"]:
                rf.recon_errors[r["sample_id"]] = r["error"]
    except UserError as exc:
        rf.recon_note = exc.cause
    return rf


def fetch(url: str, label: str, mime: str, limit: int) -> Media:
    try:
        fs, path = store.filesystem(url)
        if not fs.exists(path):
            return Media(label, mime, None, f"not found: {url}")
        size = int(fs.size(path))
        if size > limit:
            return Media(label, mime, None, f"{size / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB embed limit: {url}")
        return Media(label, mime, fs.cat_file(path))
    except (OSError, UserError) as exc:
        return Media(label, mime, None, f"unreadable: {url} ({exc})")


def sample_media(rf: RoundFiles, sid: str, limit: int) -> list[Media]:
    video = rf.videos.get(sid)
    if video:
        media = [fetch(video, "generated", "video/mp4", limit)]
    else:
        media = [Media("generated", "video/mp4", None, rf.rollout_note or "the rollout wrote no video for this sample")]
    renders = rf.renders.get(sid)
    views = (
        ("input cameras", "input.mp4", "video/mp4"),
        ("novel-view path", "path.mp4", "video/mp4"),
        ("meta view", "meta.png", "image/png"),
    )
    if renders is None:
        why = rf.recon_note or (
            f"no reconstruction: {rf.recon_errors[sid]}"
            if sid in rf.recon_errors
            else "the reconstruction wrote no renders for this sample"
        )
        return media + [Media(label, mime, None, why) for label, _, mime in views]
    return media + [fetch(f"{renders}/{name}", label, mime, limit) for label, name, mime in views]


# ---------------------------------------------------------------------------------------------
# Small renderers


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def num(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.3f}"


def histogram(name: str, values: list[float]) -> str:
    """An inline SVG bar chart; each bar's <title> gives its range and count on hover."""
    w, h, pad_l, pad_b, pad_t = 300, 130, 30, 22, 10
    v = [x for x in values if x is not None and math.isfinite(x)]
    colour = COLOURS.get(name, "#555")
    head = (
        f'<svg class="hist" id="hist-{e(name)}" data-term="{e(name)}" role="img"'
        f' aria-label="histogram of {e(name)}"'
        f' viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
    )
    if not v:
        return f'{head}<text x="{w / 2}" y="{h / 2}" text-anchor="middle" class="empty">no values</text></svg>'
    lo, hi = (0.0, 1.0) if name in UNIT_RANGE else (min(v), max(v))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * BINS
    for x in v:
        counts[min(BINS - 1, max(0, int((x - lo) / (hi - lo) * BINS)))] += 1
    top = max(counts)
    plot_w, plot_h = w - pad_l - 6, h - pad_b - pad_t
    bar_w = plot_w / BINS
    parts = [head, f'<line x1="{pad_l}" y1="{h - pad_b}" x2="{w - 6}" y2="{h - pad_b}" class="axis"/>']
    for i, c in enumerate(counts):
        if not c:
            continue
        bh = plot_h * c / top
        a, b = lo + (hi - lo) * i / BINS, lo + (hi - lo) * (i + 1) / BINS
        parts.append(
            f'<rect x="{pad_l + i * bar_w + 0.5:.1f}" y="{h - pad_b - bh:.1f}" width="{bar_w - 1:.1f}"'
            f' height="{bh:.1f}" fill="{colour}"><title>{a:.3f} to {b:.3f}: {c}</title></rect>'
        )
    mean = sum(v) / len(v)
    mx = pad_l + plot_w * (mean - lo) / (hi - lo)
    parts += [
        f'<line x1="{mx:.1f}" y1="{pad_t - 4}" x2="{mx:.1f}" y2="{h - pad_b}" class="mean">'
        f"<title>mean {mean:.3f}</title></line>",
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end">{top}</text>',
        f'<text x="{pad_l - 4}" y="{h - pad_b}" text-anchor="end">0</text>',
        f'<text x="{pad_l}" y="{h - 6}">{lo:.3f}</text>',
        f'<text x="{w - 6}" y="{h - 6}" text-anchor="end">{hi:.3f}</text>',
        "</svg>",
    ]
    return "".join(parts)


def stats_table(stats: dict[str, au.Stat]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{swatch(c)}{e(c)}</th><td>{s.n}</td><td>{num(s.mean)}</td><td>{num(s.std)}</td>'
        f"<td>{num(s.lo)}</td><td>{num(s.hi)}</td></tr>"
        for c, s in stats.items()
    )
    return (
        '<table class="stats"><thead><tr><th>term</th><th>n</th><th>mean</th><th>std</th><th>min</th><th>max</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def group_table(title: str, groups: dict[str, dict[str, au.Stat]]) -> str:
    head = "".join(f"<th>{swatch(c)}{e(c)}</th>" for c in GROUP_COLUMNS)
    body = "".join(
        f'<tr><th scope="row">{e(name)}</th><td>{max(s.n for s in stats.values())}</td>'
        + "".join(f'<td>{num(stats[c].mean)}<span class="sd">± {num(stats[c].std)}</span></td>' for c in GROUP_COLUMNS)
        + "</tr>"
        for name, stats in groups.items()
    )
    return (
        f'<h3>{e(title)}</h3><table class="stats"><thead><tr><th></th><th>n</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def swatch(name: str) -> str:
    colour = COLOURS.get(name)
    return f'<span class="swatch" style="background:{colour}"></span>' if colour else ""


def media_tile(m: Media, small: bool) -> str:
    cls = ' class="px"' if small else ""
    if m.data is None:
        body = f'<div class="missing">{e(m.label)} not embedded: {e(m.note)}</div>'
    elif m.mime.startswith("video/"):
        src = f"data:{m.mime};base64,{base64.b64encode(m.data).decode('ascii')}"
        body = f'<video{cls} controls loop muted autoplay playsinline src="{src}"></video>'
    else:
        src = f"data:{m.mime};base64,{base64.b64encode(m.data).decode('ascii')}"
        body = f'<img{cls} alt="{e(m.label)}" src="{src}">'
    return f"<figure>{body}<figcaption>{e(m.label)}</figcaption></figure>"


def term_rows(row: dict) -> str:
    out = []
    for term in REWARD_TERMS:
        t = term.name
        value, weight = row[t], row[term.weight_column]
        width = 0.0 if value is None else 100 * min(1.0, max(0.0, value))
        reason = row[term.reason_column] if term.reason_column else None
        note = f" ({reason})" if value is None and reason else ""
        out.append(
            f'<tr><th scope="row">{swatch(t)}{e(t)}</th><td class="v">{num(value)}{e(note)}</td>'
            f'<td class="bar"><span style="width:{width:.1f}%;background:{COLOURS[t]}"></span></td>'
            f'<td class="w">w {num(weight)}</td></tr>'
        )
    return "".join(out)


def card(kind: str, rank: int, row: dict, rf: RoundFiles, limit: int) -> tuple[str, int]:
    """A sample's card and how many of its media are missing."""
    sid = row["sample_id"]
    media = sample_media(rf, sid, limit)
    small = rf.widths.get(sid, SMALL_WIDTH) < SMALL_WIDTH
    camera = (
        "".join(f'<span class="chip">{e(c)}</span>' for c in row["camera"]) or '<span class="chip none">none</span>'
    )
    metrics = " · ".join(f"{e(m)} {num(row[m])}" for m in METRICS if row[m] is not None)
    error = f'<p class="error">{e(row["status"])}: {e(row["error"])}</p>' if row["status"] != "ok" else ""
    badge = f"{kind} #{rank}" if kind != "failed" else "failed"
    html_ = f"""<section class="card {e(kind)}" id="card-{e(sid)}" data-sample="{e(sid)}" data-kind="{e(kind)}">
<header><span class="badge">{e(badge)}</span><code>{e(sid)}</code>
<span class="big">reward <b>{num(row["reward"])}</b></span><span class="big">advantage <b>{num(row["advantage"])}</b></span>
<span class="muted">{e(row["round"])} · {e(row["phase"])} · group {e(row["group_index"])} · {e(rf.url)}</span></header>
<div class="body"><div class="media">{"".join(media_tile(m, small) for m in media)}</div>
<div class="facts">{error}<p class="prompt">{e(row["prompt"])}</p><p>camera {camera}</p>
<table class="terms">{term_rows(row)}</table><p class="metrics">{metrics or "no raw metrics"}</p></div></div>
</section>"""
    return html_, sum(m.data is None for m in media)


# ---------------------------------------------------------------------------------------------
# The page


def choose(pairs: list[tuple[dict, RoundFiles]], count: int) -> list[tuple[str, int, dict, RoundFiles]]:
    """Best and worst `count` by reward (a sample shown once), then up to `count` failed samples."""
    origin = {id(row): rf for row, rf in pairs}
    ok = [row for row, _ in pairs if row["status"] == "ok"]
    best, worst = au.ranked(ok, count)
    shown = {id(r) for r in best}
    chosen = [("best", i + 1, r, origin[id(r)]) for i, r in enumerate(best)]
    chosen += [("worst", i + 1, r, origin[id(r)]) for i, r in enumerate(worst) if id(r) not in shown]
    failed = [row for row, _ in pairs if row["status"] != "ok"][:count]
    return chosen + [("failed", i + 1, r, origin[id(r)]) for i, r in enumerate(failed)]


def header(files: list[RoundFiles], rows: list[dict]) -> str:
    """The files read (with provenance and why media may be missing) and the sample counts."""
    items = "".join(
        f"<li><code>{e(rf.url)}</code> — {rf.table.num_rows} rows{provenance(rf.table)}"
        + "".join(f'<br><span class="warn">{e(n)}</span>' for n in (rf.rollout_note, rf.recon_note) if n)
        + "</li>"
        for rf in files
    )
    failed = [r for r in rows if r["status"] != "ok"]
    phase_failed = Counter(r["phase"] for r in failed)
    counts: list[tuple[str, object]] = [
        ("samples", len(rows)),
        ("ok", len(rows) - len(failed)),
        ("failed", len(failed)),
    ]
    for phase, n in sorted(Counter(r["phase"] for r in rows).items()):
        counts.append((f"phase {phase}", f"{n} ({phase_failed[phase]} failed)" if phase_failed[phase] else n))
    boxes = "".join(f'<div class="count"><b>{e(v)}</b><span>{e(k)}</span></div>' for k, v in counts)
    return f'<ul class="files">{items}</ul><div class="counts">{boxes}</div>'


def provenance(table: pa.Table) -> str:
    meta = store.read_metadata_of(table)
    return "".join(f" · {k} <code>{e(meta[k])}</code>" for k in ("code_version", "params_hash") if meta.get(k))


def terms_section(rows: list[dict]) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    hists = "".join(
        f'<figure class="histfig"><figcaption>{swatch(c)}{e(c)}</figcaption>{histogram(c, [r[c] for r in ok])}</figure>'
        for c in HISTOGRAMS
    )
    groups = group_table("by camera primitive", au.by_key(ok, lambda r: r["camera"] or ["(none)"]))
    groups += group_table("by phase", au.by_key(ok, lambda r: [r["phase"]]))
    if len({r["round"] for r in rows}) > 1:
        groups += group_table("by round", au.by_key(ok, lambda r: [r["round"]]))
    reasons = Counter(str(r["error"]).split(":")[0] for r in rows if r["status"] != "ok")
    failures = "".join(f"<tr><td>{e(reason)}</td><td>{n}</td></tr>" for reason, n in reasons.most_common())
    if failures:
        failures = (
            '<h3>failure reasons</h3><table class="stats"><thead><tr><th>reason</th><th>count</th></tr>'
            f"</thead><tbody>{failures}</tbody></table>"
        )
    return (
        f'<h2>Terms</h2><div class="summary">{stats_table(au.per_term(ok))}<div class="hists">{hists}</div></div>'
        f'<p class="muted">Statistics over the {len(ok)} scored samples; terms are binned on [0, 1], reward and'
        " advantage on their own range; the dashed line is the mean.</p>"
        f"{groups}{failures}"
    )


def cards_section(pairs: list[tuple[dict, RoundFiles]], cards: int, limit: int) -> tuple[str, int, int]:
    """The cards under their headings, their number and how many media they could not embed."""
    chosen = choose(pairs, cards)
    made = [card(kind, rank, row, rf, limit) for kind, rank, row, rf in chosen]
    sections = []
    for kind, title in (("best", "Best by reward"), ("worst", "Worst by reward"), ("failed", "Failed samples")):
        body = "".join(h for (k, *_), (h, _) in zip(chosen, made, strict=True) if k == kind)
        if body:
            sections.append(f"<h2>{e(title)}</h2>{body}")
    return "".join(sections) or "<p>No samples to show.</p>", len(made), sum(missing for _, missing in made)


def render(files: list[RoundFiles], cards: int = 4, limit: int = MAX_MEDIA_BYTES) -> tuple[str, int, int]:
    """The page, its number of cards and of media it could not embed."""
    pairs = [(row, rf) for rf in files for row in rf.table.to_pylist()]
    rows = [row for row, _ in pairs]
    title = f"worldr1 audit — {', '.join(sorted({r['round'] for r in rows})) or 'no rounds'}"
    body, n_cards, missing = cards_section(pairs, cards, limit)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head><body>
<h1>{e(title)}</h1>
{header(files, rows)}
{terms_section(rows)}
{body}
<footer>worldr1 {e(worldr1.__version__)} · media are embedded; this file needs nothing else to open.</footer>
</body></html>
"""
    return page, n_cards, missing


def write_html(paths: Iterable[str], out: str, cards: int = 4, limit: int = MAX_MEDIA_BYTES) -> Written:
    """Read each rewards file (globs expanded), find its round's media and write the page atomically."""
    if cards < 0:
        raise UserError(f"--cards must be 0 or more, got {cards}", "pass e.g. --cards 4")
    # One file at a time: each file's media live in its own round directory.
    files = [locate(p, au.load([p])) for p in au.expand(list(paths))]
    if not files:
        raise UserError(
            "no rewards file given",
            "pass a path, a glob or a URL: worldr1 audit data/rounds/r000/rewards.parquet --html report.html",
        )
    page, n_cards, missing = render(files, cards, limit)
    store.write_text(out, page)
    return Written(out, len(page.encode("utf-8")), n_cards, missing)


CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#f6f8fa;--card:#fff}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px 32px;max-width:1500px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f4;padding:1px 4px;border-radius:4px}
.muted{color:var(--muted)}.warn{color:#9a6700}
ul.files{margin:0 0 12px;padding-left:18px;color:var(--muted)}
.counts{display:flex;gap:10px;flex-wrap:wrap}
.count{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:96px}
.count b{display:block;font-size:20px}.count span{color:var(--muted);font-size:12px}
.summary{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
table.stats{border-collapse:collapse;background:var(--card);border:1px solid var(--line);font-variant-numeric:tabular-nums}
table.stats th,table.stats td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table.stats th[scope=row],table.stats thead th:first-child{text-align:left}
table.stats thead th{background:#eef1f4;font-weight:600}
.sd{color:var(--muted);font-size:11px;margin-left:4px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.hists{display:grid;grid-template-columns:repeat(3,auto);gap:8px 16px}
.histfig{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 8px}
.histfig figcaption{font-weight:600;font-size:13px}
svg.hist text{font:10px system-ui,sans-serif;fill:var(--muted)}
svg.hist .axis{stroke:#8c959f;stroke-width:1}svg.hist .mean{stroke:#1f2328;stroke-width:1.2;stroke-dasharray:3 3}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid #8c959f;border-radius:8px;margin:0 0 16px;padding:12px 16px}
.card.best{border-left-color:#2e9a58}.card.worst{border-left-color:#d9731a}.card.failed{border-left-color:#cf222e}
.card header{display:flex;gap:14px;align-items:baseline;flex-wrap:wrap;margin-bottom:10px}
.badge{font-weight:700;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
.big b{font-size:17px;font-variant-numeric:tabular-nums}
.card .muted{font-size:12px}
.body{display:flex;gap:18px;flex-wrap:wrap}
.media{display:grid;grid-template-columns:repeat(4,200px);gap:10px;flex:none}
.media figure{margin:0}.media figcaption{font-size:12px;color:var(--muted);text-align:center;margin-top:2px}
.media video,.media img{width:200px;height:auto;display:block;background:#000;border-radius:4px}
.media .px{image-rendering:pixelated}
.missing{width:200px;min-height:120px;display:flex;align-items:center;justify-content:center;text-align:center;padding:8px;
  font-size:12px;color:#9a6700;background:#fff8e5;border:1px dashed #d4a72c;border-radius:4px;word-break:break-word}
.facts{flex:1;min-width:320px}
.prompt{margin:0 0 8px;padding:6px 10px;background:#f6f8fa;border-left:3px solid var(--line);max-height:7.5em;overflow:auto}
.chip{display:inline-block;background:#ddf4ff;color:#0a3069;border-radius:10px;padding:0 8px;margin-right:4px;font-size:12px}
.chip.none{background:#eef1f4;color:var(--muted)}
table.terms{border-collapse:collapse;font-variant-numeric:tabular-nums;width:100%;max-width:460px}
table.terms th{text-align:left;font-weight:500;padding:2px 8px 2px 0;white-space:nowrap}
table.terms td.v{text-align:right;padding-right:8px;width:4.5em}
table.terms td.bar{width:100%}table.terms td.bar span{display:block;height:8px;border-radius:4px;min-width:1px}
table.terms td.w{color:var(--muted);font-size:12px;padding-left:8px;white-space:nowrap}
.metrics{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
.error{color:#cf222e;font-weight:600;margin:0 0 8px;word-break:break-word}
footer{margin-top:32px;color:var(--muted);font-size:12px}
"""
