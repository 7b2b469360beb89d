"""The one reader of installed packages' entry points (``plugins.declared``) finds what
``importlib.metadata`` finds: the plugin manager and ``--help`` both read through it,
so a difference here is a plugin that loads in one place and not in the other."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.plugins.declared import declared_commands, declared_plugins

# Package names that PEP 503 treats as equal or not: clashes across folders are the point.
PACKAGE_NAMES = ["alpha", "Alpha", "al_pha", "al.pha", "al-pha", "al__pha", "beta", "workerctl_x"]
ENTRY_NAMES = st.sampled_from(["one", "two", "Three", "helpdesk", "x.y", "a-b", "q_1"])
REFERENCES = st.sampled_from(
    ["mod", "pkg.mod", "pkg.mod:attr", "pkg.mod:outer.inner", "mod:attr [extra]", "m:a[x,y]"]
)
GROUPS = st.sampled_from(["workerctl", "workerctl.commands", "console_scripts", "other"])

package = st.fixed_dictionaries(
    {
        "name": st.sampled_from(PACKAGE_NAMES),
        "version": st.sampled_from(["1.0", "0.2.3", "2026.12.4"]),
        "kind": st.sampled_from(["dist-info", "egg-info"]),
        "sections": st.lists(
            st.tuples(GROUPS, st.lists(st.tuples(ENTRY_NAMES, REFERENCES), max_size=3)),
            max_size=3,
        ),
        "comment": st.booleans(),
    }
)


def write_package(site: Path, spec: dict) -> None:
    """One package's metadata folder; a second folder of the same package in one site
    (a broken install, which importlib.metadata reads in directory order) is not made."""
    stem = f"{spec['name']}-{spec['version']}" if spec["kind"] == "dist-info" else spec["name"]
    folder = site / f"{stem}.{spec['kind']}"
    if normalized(folder.name.rsplit(".", 1)[0].split("-")[0]) in {
        normalized(f.name.rsplit(".", 1)[0].split("-")[0]) for f in site.iterdir()
    }:
        return
    folder.mkdir()
    header = "METADATA" if spec["kind"] == "dist-info" else "PKG-INFO"
    (folder / header).write_text(
        f"Metadata-Version: 2.1\nName: {spec['name']}\nVersion: {spec['version']}\n"
        f"Summary: the {spec['name']} package\n\nLong description: Version: 9.9\n"
    )
    lines = ["# written by a test"] if spec["comment"] else []
    for group, entries in spec["sections"]:
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {reference}" for name, reference in entries)
        lines.append("")
    (folder / "entry_points.txt").write_text("\n".join(lines))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def stdlib_view(paths: list[str], group: str) -> list[tuple[str, str, str]]:
    """What ``importlib.metadata.entry_points`` gives when ``paths`` is all of sys.path."""
    saved = sys.path[:]
    sys.path[:] = paths
    try:
        found = importlib.metadata.entry_points(group=group)
        return sorted((ep.name, ep.value, ep.dist.version if ep.dist else "?") for ep in found)
    finally:
        sys.path[:] = saved


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sites=st.lists(st.lists(package, max_size=4), min_size=1, max_size=3))
def test_the_plugins_found_are_the_ones_importlib_metadata_finds(tmp_path_factory, sites):
    root = tmp_path_factory.mktemp("sites")
    paths = []
    for number, packages in enumerate(sites):
        site = root / f"site{number}"
        site.mkdir()
        for spec in packages:
            write_package(site, spec)
        paths.append(str(site))

    ours = sorted((p.name, p.reference, p.version) for p in declared_plugins(paths))
    assert ours == stdlib_view(paths, "workerctl")

    commands = declared_commands(paths)
    theirs = stdlib_view(paths, "workerctl.commands")
    first_of_each = {}
    for name, value, _ in sorted(theirs, key=lambda row: row[0]):
        first_of_each.setdefault(name, value)
    assert set(commands) <= set(first_of_each)
    assert {name for name in first_of_each if "." not in name} <= set(commands)


def test_the_installed_plugins_are_the_ones_importlib_metadata_finds():
    ours = sorted((p.name, p.reference, p.version) for p in declared_plugins())
    assert ours == stdlib_view(sys.path[:], "workerctl")
    assert {"helpdesk", "llm", "roundup", "rq"} <= {name for name, _, _ in ours}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("json", "json"),
        ("json:dumps", "dumps"),
        ("os:path.join", "join"),
        ("os.path:join [extra]", "join"),
        ("json:JSONDecoder.decode[one,two]", "decode"),
    ],
)
def test_a_reference_loads_what_entry_point_load_loads(reference, expected):
    from workerctl.plugins.declared import DeclaredPlugin

    loaded = DeclaredPlugin("x", reference, "p", "1").load()
    point = importlib.metadata.EntryPoint(name="x", value=reference, group="workerctl")
    assert loaded is point.load()
    assert getattr(loaded, "__name__", "") == expected


# found by a fresh-brief attack: where the narrow reader read otherwise than importlib.metadata
ODD_TREES = {
    "spaced header": (
        "alpha-1.0.dist-info",
        "METADATA",
        "Name: alpha\nVersion: 1.0\n",
        "[ workerctl ]\na = m\n",
    ),
    "doubled brackets": (
        "alpha-1.0.dist-info",
        "METADATA",
        "Name: alpha\nVersion: 1.0\n",
        "[[workerctl]]\na = m\n",
    ),
    "semicolon line": (
        "alpha-1.0.dist-info",
        "METADATA",
        "Name: alpha\nVersion: 1.0\n",
        "[workerctl]\n; a = m\n",
    ),
    "folded summary": (
        "alpha-1.0.dist-info",
        "METADATA",
        "Name: alpha\nSummary: a long one\n  Version: 0.0.1-typo\nVersion: 1.0\n",
        "[workerctl]\na = m\n",
    ),
    "not a header first": (
        "alpha-1.0.dist-info",
        "METADATA",
        "Name: alpha\nthis is no header\nVersion: 1.0\n",
        "[workerctl]\na = m\n",
    ),
    "upper-case suffix": (
        "Alpha-1.0.DIST-INFO",
        "METADATA",
        "Name: alpha\nVersion: 1.0\n",
        "[workerctl]\na = m\n",
    ),
    "nameless folder": ("-1.0.dist-info", "METADATA", "Name: alpha\nVersion: 1.0\n", "[workerctl]\na = m\n"),
}


@pytest.mark.parametrize("case", sorted(ODD_TREES))
def test_odd_metadata_is_read_as_importlib_metadata_reads_it(tmp_path, case):
    folder, header_file, headers, entry_points = ODD_TREES[case]
    meta = tmp_path / folder
    meta.mkdir()
    (meta / header_file).write_text(
        "Metadata-Version: 2.1\n" + headers if "not a header" not in case else headers
    )
    (meta / "entry_points.txt").write_text(entry_points)
    ours = sorted((p.name, p.reference, p.version) for p in declared_plugins([str(tmp_path)]))
    theirs = [
        (n, v, ver if ver is not None else "?") for n, v, ver in stdlib_view([str(tmp_path)], "workerctl")
    ]
    assert ours == theirs


def test_an_empty_metadata_file_gives_way_to_pkg_info(tmp_path):
    meta = tmp_path / "alpha.egg-info"
    meta.mkdir()
    (meta / "METADATA").write_text("")
    (meta / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: alpha\nVersion: 1.5\n")
    (meta / "entry_points.txt").write_text("[workerctl]\na = m\n")
    assert [(p.name, p.version) for p in declared_plugins([str(tmp_path)])] == [("a", "1.5")]
    assert stdlib_view([str(tmp_path)], "workerctl") == [("a", "m", "1.5")]


def test_a_declaration_that_cannot_be_read_is_named_not_dropped(tmp_path):
    """importlib.metadata fails on both (for every package installed); the narrow reader
    skips them, and says what and where, so the plugin's author learns why it is not
    loaded instead of seeing it vanish."""
    for name, content in (
        ("noeq", b"[workerctl]\nnoeqplug\n"),
        ("latin", b"[workerctl]\nplug = caf\xe9\n"),
        ("other", b"[console_scripts]\nx = caf\xe9:y\n"),  # not workerctl's: not ours to judge
    ):
        meta = tmp_path / f"{name}-1.0.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (meta / "entry_points.txt").write_bytes(content)
    found = {p.package: p for p in declared_plugins([str(tmp_path)])}
    assert set(found) == {"noeq", "latin"}
    assert found["noeq"].problem.endswith(":2: no '=' in 'noeqplug': write it as 'name = module'")
    assert "entry_points.txt: not UTF-8 text (byte 23): save it as UTF-8" in found["latin"].problem
    assert declared_commands([str(tmp_path)]) == {}
