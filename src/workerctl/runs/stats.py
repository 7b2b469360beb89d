"""``runs stats``: counts by status, success rate, duration percentiles, tokens."""

from __future__ import annotations

from collections.abc import Iterable

from workerctl import render
from workerctl.runs.states import STATES, is_old_refusal


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


GROUPINGS = ("worker", "day", "model")


def _group(doc: dict, by: str) -> str:
    if by == "day":
        return doc["created"][:10]
    if by == "model":
        return doc.get("model") or "(no model)"
    return doc["worker"]


def compute(summaries: Iterable[dict], by: str = "worker") -> dict:
    """Figures per worker, per day (UTC, of creation) or per model (the one that used
    the most tokens in the run): runs, counts, failures, success rate, durations,
    tokens, and the estimated cost of the runs that have one."""
    per: dict[str, dict] = {}
    for doc in summaries:
        if is_old_refusal(doc):
            continue  # an older history's refusal: not a run
        item = per.setdefault(
            _group(doc, by),
            {
                "counts": dict.fromkeys(STATES, 0),
                "durations": [],
                "tokens": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": {},
                "priced": 0,
            },
        )
        item["counts"][doc["status"]] += 1
        if doc.get("duration") is not None:
            item["durations"].append(doc["duration"])
        item["tokens"] += doc.get("tokens") or 0
        item["input_tokens"] += doc.get("input_tokens") or 0
        item["output_tokens"] += doc.get("output_tokens") or 0
        if doc.get("cost") is not None:
            currency = doc.get("currency") or "?"
            item["cost"][currency] = item["cost"].get(currency, 0.0) + doc["cost"]
            item["priced"] += 1
    return {
        name: figures(
            item["counts"], _percentile(item["durations"], 0.5), _percentile(item["durations"], 0.95), item
        )
        for name, item in sorted(per.items())
    }


#: ``runs stats --json``: each group's fields (``figures``)
JSON_FIELDS = (
    "runs",
    "counts",
    "failures",
    "success_rate",
    "p50_seconds",
    "p95_seconds",
    "tokens",
    "input_tokens",
    "output_tokens",
    "estimated_cost",
    "runs_priced",
)


def figures(counts: dict[str, int], p50: float | None, p95: float | None, item: dict) -> dict:
    """One group's ``runs stats`` figures, from its counts by status, its duration
    percentiles and its token and cost totals (summed from summaries, or read from
    the cross-run indexes: both give the same figures)."""
    finished = counts["completed"] + counts["failed"] + counts["cancelled"]
    return {
        "runs": sum(counts.values()),
        "counts": counts,
        "failures": counts["failed"] + counts["cancelled"],
        "success_rate": counts["completed"] / finished if finished else None,
        "p50_seconds": p50,
        "p95_seconds": p95,
        "tokens": item["tokens"],
        "input_tokens": item["input_tokens"],
        "output_tokens": item["output_tokens"],
        "estimated_cost": {k: round(v, 6) for k, v in item["cost"].items()},
        "runs_priced": item["priced"],
    }


def cost_text(cost: dict[str, float]) -> str:
    return " + ".join(f"~{amount:.4f} {currency}" for currency, amount in cost.items())


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
        money = (
            f"; est. cost {cost_text(f['estimated_cost'])} ({f['runs_priced']} priced)"
            if f["estimated_cost"]
            else ""
        )
        lines.append(
            f"{'':<24} {render.plural(f['runs'], 'run')} ({parts}); success {rate}; "
            f"p50 {render.duration(f['p50_seconds'])}, "
            f"p95 {render.duration(f['p95_seconds'])}; tokens {f['tokens']} "
            f"({f['input_tokens']} in, {f['output_tokens']} out){money}"
        )
    return "\n".join(lines)


def stats_from_counts(per: dict[str, dict]) -> dict[str, dict]:
    """``runs stats`` figures from ``Indexes.counts`` (the history's hourly and daily
    counts: no run is read)."""
    from workerctl.history.indexes import percentile

    out = {}
    for name, item in sorted(per.items()):
        counts = {s: item["counts"].get(s, 0) for s in STATES}
        if any(counts.values()):
            out[name] = figures(
                counts, percentile(item["durations"], 0.5), percentile(item["durations"], 0.95), item
            )
    return out
