"""Tokens and estimated cost: what each run used, as its executor reported it.

An executor reports ``input_tokens`` and ``output_tokens`` (and its ``model``) in
each step's usage (the llm executor does; echo and command report none). The
engine adds them up when the run finishes. When the workspace has a price table
(``prices.yaml``: a version, a currency and a price per million input and output
tokens for each model) the run also gets an estimated cost, marked as an estimate
and stamped with the table's version, since providers change their prices and
bill on their own count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.runs.model import Iteration

from workerctl.errors import ConfigError

PRICE_FILE = "prices.yaml"
UNKNOWN_MODEL = "(no model)"


def usage_totals(iterations: Iterable[Iteration]) -> dict[str, Any]:
    """Input and output tokens over all iterations, per model and in total; None
    when the executor reported no tokens at all."""
    per_model: dict[str, dict[str, int]] = {}
    reported = False
    for it in iterations:
        usage = it.usage or {}
        if usage.get("input_tokens") is None and usage.get("output_tokens") is None:
            continue
        reported = True
        model = str(usage.get("model") or UNKNOWN_MODEL)
        slot = per_model.setdefault(model, {"input_tokens": 0, "output_tokens": 0})
        slot["input_tokens"] += int(usage.get("input_tokens") or 0)
        slot["output_tokens"] += int(usage.get("output_tokens") or 0)
    if not reported:
        return {}
    return {
        "input_tokens": sum(m["input_tokens"] for m in per_model.values()),
        "output_tokens": sum(m["output_tokens"] for m in per_model.values()),
        "models": per_model,
    }


@dataclass(frozen=True)
class PriceTable:
    version: str
    currency: str
    prices: dict[str, tuple[float, float]]  # model -> (input, output) per million tokens

    def estimate(self, totals: dict[str, Any]) -> dict[str, Any] | None:
        """The estimated cost of ``usage_totals``; models without a price are named."""
        if not totals:
            return None
        amount, unpriced = 0.0, []
        for model, used in totals["models"].items():
            price = self.prices.get(model)
            if price is None:
                unpriced.append(model)
                continue
            amount += (used["input_tokens"] * price[0] + used["output_tokens"] * price[1]) / 1e6
        return {
            "estimate": True,
            "amount": round(amount, 6),
            "currency": self.currency,
            "price_table": self.version,
            "unpriced_models": unpriced,
        }


_CACHE: dict[str, tuple[tuple[int, int], PriceTable]] = {}


def price_table(root: Path) -> PriceTable | None:
    """The workspace's price table, or None when it has none (read once per change)."""
    path = root / PRICE_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1]
    table = _load(path)
    _CACHE[str(path)] = (stamp, table)
    return table


def _load(path: Path) -> PriceTable:
    from workerctl.workers.yaml_positions import PRICE_FILE, load_yaml_file

    data, _, problems = load_yaml_file(path, str(path), PRICE_FILE)  # the one YAML loader
    if problems:
        raise ConfigError(f"{path}: cannot read the price table:", problems)
    example = (
        "version: 2026-11-01, currency: USD, models: {gpt-4o-mini: "
        "{input: 0.15, output: 0.60}} (per million tokens)"
    )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the price table must be a mapping", hint=example)
    version, currency, models = data.get("version"), data.get("currency", "USD"), data.get("models")
    if version is None or not str(version).strip():
        raise ConfigError(
            f"{path}: version: missing (say which prices these are, e.g. the date you copied them)",
            hint=example,
        )
    if not isinstance(currency, str) or not currency.strip():
        raise ConfigError(f"{path}: currency: must be text such as USD", hint=example)
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{path}: models: must map model ids to prices", hint=example)
    prices = {}
    for model, price in models.items():
        if not isinstance(price, dict) or not all(
            isinstance(price.get(k), int | float) and not isinstance(price.get(k), bool) and price[k] >= 0
            for k in ("input", "output")
        ):
            raise ConfigError(
                f"{path}: models.{model}: needs input and output prices per "
                "million tokens (numbers, 0 or more)",
                hint=example,
            )
        prices[str(model)] = (float(price["input"]), float(price["output"]))
    return PriceTable(str(version), currency, prices)


def main_model(totals: dict[str, Any]) -> str | None:
    """The model that used the most tokens (for grouping runs by model)."""
    models = totals.get("models") if totals else None
    if not models:  # none reported, or a run file that names none (``runs.typed.USAGE``)
        return None
    return max(models.items(), key=lambda kv: kv[1]["input_tokens"] + kv[1]["output_tokens"])[0]
