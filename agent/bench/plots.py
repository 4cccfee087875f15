"""Charts of benchmark figures: ``vla-agent bench plot A.json [B.json ...]`` turns the JSON a
benchmark printed (``--json``) or saved (``result.json`` in its run folder) into one HTML page.
Several files of one benchmark are drawn side by side, one colour per file (a policy against
another, sync against async chunks). Inline SVG: no plotting library, opens offline anywhere."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from vla_agent.errors import ConfigError

PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#bab0ac"]
DRAWN = ("chains", "skills", "expert", "server-clients")


def bars_svg(
    title: str, labels: list[str], series: dict[str, list[float | None]], fmt: str = "{:.2f}"
) -> str:
    """Grouped horizontal bars: a group per label, a bar per series (None: no bar)."""
    top = max([v for vs in series.values() for v in vs if v is not None] or [1.0])
    vmax = 1.0 if top <= 1.0 else top
    bar, gap, left, width = 12, 10, 150, 360
    height = 30 + len(labels) * (len(series) * bar + gap)
    parts = [_svg_open(left + width + 70, height), _title(title)]
    y = 30
    for i, label in enumerate(labels):
        mid = y + len(series) * bar / 2 + 4
        parts.append(f'<text x="{left - 6}" y="{mid}" text-anchor="end">{html.escape(label)}</text>')
        for j, values in enumerate(series.values()):
            v = values[i]
            if v is not None:
                w = width * v / vmax
                parts.append(
                    f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{PALETTE[j % 8]}"/>'
                )
                parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 3}">{fmt.format(v)}</text>')
            y += bar
        y += gap
    return "".join(parts) + "</svg>"


def lines_svg(title: str, xs: list[float], series: dict[str, list[float]], ylabel: str) -> str:
    """Lines over a shared x axis (points marked), from zero to a round number above the largest."""
    left, top, width, height = 60, 40, 420, 220
    ymax = _round_up(max([v for vs in series.values() for v in vs] or [1.0]))
    x0, x1 = min(xs), max(xs)

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (width * (x - x0) / (x1 - x0) if x1 > x0 else width / 2)
        return px, top + height - height * y / ymax

    parts = [_svg_open(left + width + 30, top + height + 50), _title(title)]
    parts.append(
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="#999"/>'
    )
    parts.append(f'<text x="6" y="32">{html.escape(ylabel)}</text>')
    for x in xs:
        px, _ = at(x, 0)
        parts.append(f'<text x="{px:.1f}" y="{top + height + 16}" text-anchor="middle">{x:g}</text>')
    for k in range(6):
        _, py = at(x0, ymax * k / 5)
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{ymax * k / 5:g}</text>')
    for j, values in enumerate(series.values()):
        colour = PALETTE[j % 8]
        points = [at(x, v) for x, v in zip(xs, values)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points)
    x, y = left, top + height + 38
    for j, name in enumerate(series):  # the legend, under the axis
        parts.append(f'<text x="{x}" y="{y}" fill="{PALETTE[j % 8]}">&#9632; {html.escape(name)}</text>')
        x += 7 * len(name) + 24
    return "".join(parts) + "</svg>"


def _round_up(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= v (an axis' end)."""
    if v <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(v))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= v)


def _svg_open(width: float, height: float) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'font-family="sans-serif" font-size="11">'
    )


def _title(text: str) -> str:
    return f'<text x="6" y="16" font-size="13" font-weight="bold">{html.escape(text)}</text>'


def _union(results: dict[str, dict], key: str) -> list[str]:
    return sorted({k for r in results.values() for k in r.get(key, {})})


def charts(results: dict[str, dict]) -> list[str]:
    """The charts of one benchmark's results (name -> JSON figures), one series per result."""
    kinds = {r.get("benchmark") for r in results.values()}
    if len(kinds) != 1:
        raise ConfigError(
            f"bench plot draws results of one benchmark side by side; got {sorted(map(str, kinds))}"
        )
    kind = kinds.pop()
    if kind == "chains":
        n = max(len(r["per_position"]) for r in results.values())
        skills = _union(results, "per_skill")
        breaks = _union(results, "broken_at")
        return [
            bars_svg(
                "chains still whole after k subgoals",
                [f"k = {k + 1}" for k in range(n)],
                {
                    name: [(r["per_position"] + [None] * n)[k] for k in range(n)]
                    for name, r in results.items()
                },
            ),
            bars_svg(
                "subgoal success by skill",
                skills,
                {
                    name: [r["per_skill"].get(s, {}).get("success") for s in skills]
                    for name, r in results.items()
                },
            ),
            bars_svg(
                "where chains break (chains)",
                breaks,
                {name: [float(r["broken_at"].get(s, 0)) for s in breaks] for name, r in results.items()},
                fmt="{:.0f}",
            ),
        ]
    if kind in ("skills", "expert"):
        skills, variants = _union(results, "per_skill"), _union(results, "per_variant")
        return [
            bars_svg(
                "success by skill",
                [*skills, "all"],
                {
                    name: [*(r["per_skill"].get(s) for s in skills), r["success_rate"]]
                    for name, r in results.items()
                },
            ),
            bars_svg(
                "success by variant",
                variants,
                {name: [r["per_variant"].get(v) for v in variants] for name, r in results.items()},
            ),
        ]
    if kind == "server-clients":
        first = next(iter(results.values()))
        if any(r["clients"] != first["clients"] for r in results.values()):
            raise ConfigError("bench plot draws server results side by side only for the same client counts")
        xs = [float(c) for c in first["clients"]]

        def series(metric) -> dict[str, list[float]]:
            return {
                f"{name} {mode}" if len(results) > 1 else mode: [metric(r[mode][str(int(c))]) for c in xs]
                for name, r in results.items()
                for mode in ("unbatched", "batched")
            }

        return [
            lines_svg("throughput by clients", xs, series(lambda f: f["requests_per_s"]), "requests/s"),
            lines_svg("p99 latency by clients", xs, series(lambda f: f["latency_ms"]["p99"]), "ms"),
        ]
    raise ConfigError(f"bench plot has no charts for benchmark {kind!r}; it draws {', '.join(DRAWN)}")


def load_results(paths: list[Path]) -> dict[str, dict]:
    """Benchmark JSON files (a run folder stands for its ``result.json``), named by file."""
    results: dict[str, dict] = {}
    for p in map(Path, paths):
        f = p / "result.json" if p.is_dir() else p
        try:
            result = json.loads(f.read_text())
        except OSError as e:
            raise ConfigError(f"{f}: {e.strerror}") from None
        except ValueError:
            raise ConfigError(f"{f}: not JSON (bench plot reads what a benchmark's --json printed)") from None
        if not isinstance(result, dict) or "benchmark" not in result:
            raise ConfigError(f"{f}: not a benchmark's figures (no 'benchmark' field)")
        name = p.name if p.is_dir() else p.stem
        results[name if name not in results else str(p)] = result
    return results


def page(results: dict[str, dict]) -> str:
    """One HTML page: a legend (file -> colour), the charts, then each file's scalar figures."""
    legend = " ".join(
        f'<span style="color:{PALETTE[j % 8]}">&#9632;</span> {html.escape(name)}'
        for j, name in enumerate(results)
    )
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
        for name, r in results.items()
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    )
    kind = next(iter(results.values()))["benchmark"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>vla-agent bench {kind}</title></head>"
        f"<body style='font-family:sans-serif'><h2>bench {html.escape(kind)}</h2><p>{legend}</p>"
        + "".join(f"<div>{svg}</div>" for svg in charts(results))
        + f"<h3>figures</h3><table border='1' cellpadding='3'>{rows}</table></body></html>"
    )
