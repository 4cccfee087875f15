"""Dry-run reports: one self-contained HTML page per run folder (next to ``trace.jsonl`` and the
video) with the plan, a timeline of subgoals (attempts, retries, replans, shield interventions),
latencies and the end state. Plots are inline SVG: no plotting library, opens offline anywhere.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from vla_agent.agent.core.trace import read_trace, summarize

COLORS = {"done": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "stopped": "#6d4c41"}


def _timeline(records: list[dict]) -> tuple[list[dict], list[int], list[tuple[int, str]], int]:
    """Attempt spans (start/end control step, status), shield steps and marks (retry/replan)."""
    spans: list[dict] = []
    shield: list[int] = []
    marks: list[tuple[int, str]] = []
    step = 0
    for r in records:
        if r.get("type") == "step":
            step += 1
            continue
        kind = r.get("kind")
        if kind == "subgoal_start":
            spans.append(
                {
                    "index": r["index"],
                    "start": step,
                    "end": step,
                    "status": "running",
                    "label": f"{r['index'] + 1}. {r['instruction']}",
                    "attempt": r.get("attempt", 1),
                }
            )
        elif kind in ("retry", "subgoal_end") and spans:
            spans[-1]["end"] = step
            spans[-1]["status"] = r.get("status", "failed") if kind == "subgoal_end" else "failed"
            if kind == "retry":
                marks.append((step, "retry"))
        elif kind == "replan":
            marks.append((step, "replan"))
        elif kind == "shield":
            shield.append(step)
        elif kind == "stopped" and spans:
            spans[-1]["status"] = "stopped"
    return spans, shield, marks, step


def _timeline_svg(spans: list[dict], shield: list[int], marks: list[tuple[int, str]], total: int) -> str:
    width, left, row = 900, 330, 26
    height = row * (len(spans) + 2) + 10
    scale = (width - left - 20) / max(total, 1)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="timeline of subgoals over control steps">'
    ]
    for i, s in enumerate(spans):
        y = 10 + i * row
        x0, x1 = left + s["start"] * scale, left + max(s["end"], s["start"] + 1) * scale
        label = s["label"] + (f" (attempt {s['attempt']})" if s["attempt"] > 1 else "")
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{html.escape(label[:48])}</text>"
        )
        parts.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{row - 8}" rx="3" '
            f'fill="{COLORS.get(s["status"], "#777")}"><title>{html.escape(s["status"])}: '
            f"steps {s['start']}-{s['end']}</title></rect>"
        )
    axis_y = 10 + len(spans) * row + 4
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - 20}" y2="{axis_y}" stroke="#999"/>')
    for t in np.linspace(0, total, 6).round().astype(int):
        x = left + t * scale
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="11">{t}</text>')
    parts.append(
        f'<text x="{left - 8}" y="{axis_y + 16}" text-anchor="end" font-size="11">control step</text>'
    )
    for t in shield:
        x = left + t * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{axis_y - 6}" x2="{x:.1f}" y2="{axis_y}" stroke="#f9a825" '
            'stroke-width="2"><title>shield intervention</title></line>'
        )
    for t, kind in marks:
        x = left + t * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{axis_y}" stroke="#6a1b9a" '
            f'stroke-dasharray="4 3"><title>{kind}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _latency_svg(policy_ms: list[float], overhead_ms: list[float]) -> str:
    width, height, pad = 900, 180, 40
    series = [("policy", policy_ms, "#1565c0"), ("orchestrator overhead", overhead_ms, "#ef6c00")]
    top = max([max(v) for _, v, _ in series if v] + [1.0])
    n = max(len(policy_ms), len(overhead_ms), 2)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="latency per control step">'
    ]
    parts.append(
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" stroke="#999"/>'
    )
    parts.append(f'<text x="4" y="14" font-size="11">{top:.1f} ms</text>')
    parts.append(f'<text x="4" y="{height - pad}" font-size="11">0</text>')
    for j, (name, values, color) in enumerate(series):
        if not values:
            continue
        pts = " ".join(
            f"{pad + i * (width - pad - 10) / (n - 1):.1f},{height - pad - v / top * (height - pad - 20):.1f}"
            for i, v in enumerate(values)
        )
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>')
        parts.append(
            f'<text x="{pad + 10 + j * 220}" y="{height - 12}" font-size="12" fill="{color}">'
            f"{name} (ms per step)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def write_report(folder: str | Path, summary: dict | None = None) -> Path:
    """Write ``report.html`` into a run folder that holds ``trace.jsonl`` (and optionally
    ``episode.mp4``); ``summary`` is the run's summary, read from ``summary.json`` when not given.
    Return the page's path."""
    folder = Path(folder)
    trace = folder / "trace.jsonl"
    records = list(read_trace(trace))
    s = summarize(trace, records)
    if summary is None:
        path = folder / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {}
    spans, shield, marks, total = _timeline(records)
    steps = [r for r in records if r.get("type") == "step"]
    policy_ms = [r.get("timing_ms", {}).get("policy", 0.0) for r in steps]
    overhead_ms = [r.get("timing_ms", {}).get("overhead", 0.0) for r in steps]
    status = summary.get("status") or s["final"].get("status", "unknown")
    reason = summary.get("reason") or s["final"].get("reason", "")
    plan_rows = [
        [i + 1, g["skill"], ", ".join(f"{k}={v}" for k, v in g["args"].items()), g["instruction"]]
        for i, g in enumerate(s["plan"])
    ]
    outcome_rows = [
        [o["index"] + 1, o["instruction"], o["status"], o["attempts"], o["steps"], o["reason"]]
        for o in s["subgoals"]
    ]
    shield_events = [r for r in records if r.get("kind") == "shield"]
    shield_rows = [
        [
            r.get("step"),
            r.get("index", 0) + 1,
            "hold" if r.get("held") else "clipped",
            "; ".join(r.get("violations", [])),
        ]
        for r in shield_events[:50]
    ]
    pct = lambda d: f"p50 {d['p50']:.1f} ms, p99 {d['p99']:.1f} ms" if d else "n/a"  # noqa: E731
    video = (
        '<video src="episode.mp4" controls width="384"></video>' if (folder / "episode.mp4").exists() else ""
    )
    holds = summary.get("holds", [])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>vla-agent dry run: {html.escape(s["command"] or "")}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; max-width: 960px; color: #222 }}
table {{ border-collapse: collapse; margin: 8px 0 18px }} td, th {{ border: 1px solid #ddd; padding: 4px 8px;
text-align: left; font-size: 14px }} th {{ background: #f3f3f3 }}
.status {{ font-weight: bold; color: {COLORS.get("done" if status == "success" else "failed")} }}
.muted {{ color: #666; font-size: 13px }}
</style></head><body>
<h1>Dry run: “{html.escape(s["command"] or "")}”</h1>
<p><span class="status">{html.escape(status)}</span> {html.escape(reason or "")}</p>
<p class="muted">scene: {html.escape(str(s["scene"]))} · seed {s["seed"]}
· policy {html.escape(str(s["policy"]))}
· {total} control steps · {s["shield_interventions"]} shield interventions ({s["shield_holds"]} holds)
· unsafe actions that reached the robot: {summary.get("unsafe_actions_reached_backend", "n/a")}
· unsafe measured states: {summary.get("unsafe_states_reached", "n/a")}</p>
{video}
<h2>Plan</h2>
{_table(plan_rows, ["#", "skill", "arguments", "instruction sent to the policy"])}
<h2>Timeline</h2>
<p class="muted">bars: subgoal attempts (green done, red failed); dashed lines: retries and replans;
ticks on the axis: shield interventions.</p>
{_timeline_svg(spans, shield, marks, total)}
<h2>Outcomes</h2>
{_table(outcome_rows, ["#", "subgoal", "status", "attempts", "steps", "reason"])}
<h2>End state (ground truth of the simulator)</h2>
<p>{html.escape(", ".join(holds)) or "(not recorded)"}</p>
<h2>Latency</h2>
<p>policy {pct(s["policy_ms"])};
orchestrator overhead (shield + detector + bookkeeping) {pct(s["overhead_ms_per_step"])}</p>
{_latency_svg(policy_ms, overhead_ms)}
<h2>Shield interventions</h2>
{_table(shield_rows, ["step", "subgoal", "action", "violations"]) if shield_rows else "<p>none</p>"}
<p class="muted">trace: trace.jsonl · replay with <code>vla-agent replay {html.escape(str(trace))}</code></p>
</body></html>
"""
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
