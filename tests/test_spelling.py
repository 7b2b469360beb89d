"""A slip of the finger is understood wherever a name is typed (``workerctl.spelling``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.errors import NotFoundError, UsageError
from workerctl.plugins.manager import get_registry
from workerctl.spelling import close_spellings, one_edit_apart
from workerctl.workers.files import find_path, similar, worker_paths
from workerctl.workspace import Workspace, init_workspace

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=4, max_size=24)


@st.composite
def a_slip(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    names = draw(st.lists(NAME, min_size=1, max_size=30, unique=True))
    name = draw(st.sampled_from(names))
    at = draw(st.integers(0, len(name) - 2))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    typo = draw(
        st.sampled_from(
            [
                name[:at] + name[at + 1 :],
                name[:at] + name[at] + name[at:],
                name[:at] + name[at + 1] + name[at] + name[at + 2 :],
                name[:at] + letter + name[at + 1 :],
            ]
        )
    )
    return name, typo, names


@settings(max_examples=200, deadline=None)
@given(a_slip())
def test_one_slip_finds_its_name_unless_more_are_as_close(slip: tuple[str, str, list[str]]) -> None:
    name, typo, names = slip
    if typo in names:
        return
    found = close_spellings(typo, names)
    as_close = [n for n in names if one_edit_apart(typo, n)]
    if len(as_close) <= 3:
        assert name in found, (typo, found)
    else:
        assert set(found) <= set(as_close) and len(found) == 3
    # worker names go through the same rule
    assert name in similar(typo, names) or len(as_close) > 3


def test_the_cases_difflib_alone_missed() -> None:
    assert close_spellings("itit", ["init", "runs", "run", "workers"]) == ["init"]
    assert "review" in close_spellings("rveiew", ["review", "rerun", "retry"])


@given(st.text(max_size=12), st.text(max_size=12))
def test_one_edit_apart_agrees_with_a_brute_force_edit_distance(a: str, b: str) -> None:
    assert one_edit_apart(a, b) == (_distance(a, b) == 1)


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@pytest.fixture(scope="module")
def sample_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return init_workspace(tmp_path_factory.mktemp("spelling") / "ws", get_registry())


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_slip_of_a_worker_name_names_the_worker(sample_workspace: Workspace, data: st.DataObject) -> None:
    """Any one slip of a sample worker's name, the ones that break the name rule too
    (``overdue--task-review``, ``Overdue-task-review``, ``overdue_task-review``, found by
    a fresh-brief attack: exit 2 with no suggestion), is answered with that name."""
    names = sorted(p.stem for p in worker_paths(sample_workspace))
    name = data.draw(st.sampled_from(names))
    at = data.draw(st.integers(0, len(name) - 2))
    letter = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_ABCXYZ"))
    typo = data.draw(
        st.sampled_from(
            [
                name[:at] + name[at + 1 :],
                name[:at] + name[at] + name[at:],
                name[:at] + name[at + 1] + name[at] + name[at + 2 :],
                name[:at] + letter + name[at + 1 :],
            ]
        )
    )
    if typo in names or sum(one_edit_apart(typo, n) for n in names) > 3:
        return
    with pytest.raises((UsageError, NotFoundError)) as refused:
        find_path(sample_workspace, typo)
    assert name in (refused.value.hint or ""), (typo, str(refused.value))
