"""``runs stats``: counts by status, success rate, duration percentiles, tokens."""

from __future__ import annotations

from collections.abc import Iterable

from workerctl import render
from workerctl.runs.model import STATES


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def compute(summaries: Iterable[dict]) -> dict:
    per: dict[str, dict] = {}
    for doc in summaries:
        item = per.setdefault(doc["worker"], {"counts": dict.fromkeys(STATES, 0),
                                              "durations": [], "tokens": 0})
        item["counts"][doc["status"]] += 1
        if doc.get("duration") is not None:
            item["durations"].append(doc["duration"])
        item["tokens"] += doc.get("tokens") or 0
    out = {}
    for name, item in sorted(per.items()):
        counts = item["counts"]
        finished = counts["completed"] + counts["failed"] + counts["cancelled"]
        out[name] = {
            "runs": sum(counts.values()), "counts": counts,
            "success_rate": counts["completed"] / finished if finished else None,
            "p50_seconds": _percentile(item["durations"], 0.5),
            "p95_seconds": _percentile(item["durations"], 0.95),
            "tokens": item["tokens"],
        }
    return out


def render_chart(figures: dict, width: int = 30) -> str:
    if not figures:
        return "no runs match"
    lines = []
    most = max(f["runs"] for f in figures.values())
    for name, f in figures.items():
        counts = f["counts"]
        bar = ""
        for status in ("completed", "failed", "cancelled", "running", "queued", "pending"):
            cells = round(counts[status] / most * width) if most else 0
            if counts[status] and not cells:
                cells = 1
            bar += render.colour(render.SYMBOLS[status] * cells, status)
        rate = "-" if f["success_rate"] is None else f"{f['success_rate'] * 100:.0f}%"
        lines.append(f"{name:<24} {bar}")
        parts = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
        lines.append(f"{'':<24} {render.plural(f['runs'], 'run')} ({parts}); success {rate}; "
                     f"p50 {render.duration(f['p50_seconds'])}, "
                     f"p95 {render.duration(f['p95_seconds'])}; tokens {f['tokens']}")
    return "\n".join(lines)
