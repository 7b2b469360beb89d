"""What the review's automatic checks cost.

    .venv/bin/python benchmarks/review_bench.py [--comments 300] [--repeat 20]

1. All checks of one clean sample run (``overdue-task-review`` on T-1042), in process:
   median over ``--repeat``.
2. The duplicate check on a task that already holds ``--comments`` long comments
   (about 2,000 characters each, different words): median with difflib's cheap upper
   bounds answering first (what ``review`` does) and with the full ratio for every pair.
3. Finding claims in a 10,000-character output (60 sentences, a third of them claims).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs import review
from workerctl.runs.claims import claims_in
from workerctl.workspace import init_workspace

WORDS = [
    "glossary",
    "legal",
    "review",
    "agency",
    "catalogue",
    "launch",
    "invoice",
    "customer",
    "product",
    "list",
    "marketing",
    "translation",
    "vendor",
    "schedule",
    "budget",
    "risk",
    "owner",
    "date",
    "blocker",
    "approval",
    "contract",
    "team",
    "release",
    "notes",
    "booking",
    "clinic",
    "safari",
    "cookie",
    "session",
]


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as tmp:
        workspace = init_workspace(Path(tmp) / "ws", get_registry())
        app = App(str(workspace.root))
        book = app.records
        for n in range(args.comments):
            text = " ".join(rng.choice(WORDS) for _ in range(260))
            book.add_comment("T-1042", text, author=f"person {n % 7}", run_id=None, key=f"bench-{n}")
        run = Engine(workspace, app.registry).start("overdue-task-review", StartOptions(record_id="T-1042"))
        stored = app.history.get(run.id)
        all_checks = median_ms(
            lambda: review.checks(stored, records=book, registry=app.registry), args.repeat
        )
        pruned = median_ms(lambda: review._duplicates(stored, book), args.repeat)
        full = review.similarity
        review.similarity = lambda a, b, floor=0.0: full(a, b)  # type: ignore[assignment]
        try:
            unpruned = median_ms(lambda: review._duplicates(stored, book), max(3, args.repeat // 5))
        finally:
            review.similarity = full  # type: ignore[assignment]
        sentences = []
        for n in range(60):
            body = " ".join(rng.choice(WORDS) for _ in range(22))
            sentences.append(f"Updated the {body}." if n % 3 == 0 else f"The {body} is late.")
        output = " ".join(sentences)[:10000]
        found = len(claims_in(output))
        claims_ms = median_ms(lambda: claims_in(output), args.repeat)
    print(f"all checks of one clean run ({args.comments} earlier comments on its task): {all_checks:.1f} ms")
    print(
        f"duplicate check, {args.comments} comments of ~2,000 chars: {pruned:.1f} ms with "
        f"difflib's upper bounds first, {unpruned:.1f} ms with the full ratio for each pair"
    )
    print(f"claims in a {len(output):,}-character output: {found} found in {claims_ms:.2f} ms")


if __name__ == "__main__":
    main()
