"""The whole suite's (``tests/`` and every plugin's ``tests/``) process set-up."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

# tests/helpers.py for every test, the plugins' included: their workerctl processes
# are forked as the main suite's are (tests/forkserver.py)
_TESTS = str(Path(__file__).parent / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

# A shell without job control starts background jobs with SIGINT ignored, and a
# process started with SIGINT ignored never installs Python's KeyboardInterrupt
# handler; every workerctl the tests start inherits that. The Ctrl-C tests then
# send a SIGINT nothing hears: restore the default so a suite started in the
# background (nohup, `cmd &` in a script, a CI runner) tests what a terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_xdist_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-xdist's workers set COLUMNS=80, and tables fit the page COLUMNS names:
    they would be cut narrower than in a plain run, and a test's result would depend
    on -n. A test that wants a width sets COLUMNS itself."""
    monkeypatch.delenv("COLUMNS", raising=False)


def pytest_configure(config: pytest.Config) -> None:
    """Compile workerctl's and the plugins' source to bytecode once, in the process
    that starts the suite (not in each xdist worker).

    The tests start thousands of ``workerctl`` processes. An editable install has no
    bytecode cache, and where ``PYTHONDONTWRITEBYTECODE`` is set (this CI machine sets
    it) nothing ever writes one, so every process compiled the whole package again:
    about 75 ms of CPU each, a third of the suite's. Reading a cache is still allowed
    there; a cache older than its source is ignored by Python, so an edit is never
    hidden."""
    if hasattr(config, "workerinput"):
        return
    import compileall
    from pathlib import Path

    root = Path(__file__).parent
    for source in [root / "src", *sorted((root / "plugins").glob("*/src"))]:
        compileall.compile_dir(source, quiet=2, workers=0)
    _rewrite_asserts_once(config, root)


def _rewrite_asserts_once(config: pytest.Config, root: Path) -> None:
    """Rewrite the asserts of the test modules (and of workerctl, whose ``pytest11``
    entry point has pytest rewrite the whole package) once, here, into the cache
    pytest itself keeps beside them, instead of in each xdist worker.

    Without ``PYTHONDONTWRITEBYTECODE`` pytest writes that cache as it imports; with it,
    every worker rewrote about 190 modules (3 to 4 s of CPU, before its first test) in
    every run. pytest reads the cache whatever that variable says and checks each entry
    against its source's hash, so an edited file is rewritten again. The functions used
    are pytest's own but private: if a pytest release renames them, this is skipped and
    the workers rewrite as before."""
    try:
        from _pytest.assertion.rewrite import (
            PYC_TAIL,
            _read_pyc,
            _rewrite_test,
            _write_pyc,
            assertstate_key,
            get_cache_dir,
        )

        state = config.stash[assertstate_key]
    except (ImportError, KeyError):
        return  # another pytest, or --assert=plain
    sources = [
        *(root / "src" / "workerctl").rglob("*.py"),
        *(root / "tests").rglob("*.py"),
        *(root / "plugins").glob("*/tests/**/*.py"),
        root / "conftest.py",
    ]
    for source in sources:
        cache = get_cache_dir(source)
        pyc = cache / (source.name[:-3] + PYC_TAIL)
        if _read_pyc(source, pyc) is not None:
            continue
        try:
            cache.mkdir(exist_ok=True)
            source_hash, code = _rewrite_test(source, config)
        except (OSError, SyntaxError):
            continue  # pytest reports it when it imports the module
        _write_pyc(state, code, source_hash, pyc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (otherwise in collection order): pytest-xdist hands tests
    out in this order, and a 30-second test handed out last kept one worker busy while
    the others had nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
