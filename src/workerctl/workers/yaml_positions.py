"""YAML with positions: safe loading that remembers where every key and item stands.

Validation reports each problem as ``FILE:LINE:COL``; PyYAML's safe loader
gives values without positions, so the node tree is walked once to keep them.
"""

from __future__ import annotations

from typing import Any

from workerctl.workers.model import Problem

Locs = dict[tuple, tuple[tuple[int, int], tuple[int, int]]]  # path -> (key pos, value pos)


def _pos(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def parse_yaml(text: str, file: str) -> tuple[Any, Locs, list[Problem]]:
    """Safe-load ``text`` and remember where every key and item stands."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [Problem(file, 1, 1, "(file)", "the file is empty",
                                      "write the worker's fields, see 'workerctl worker new'")]
        data = loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        return None, {}, [Problem(file, line, col, "(yaml)", f"unsupported YAML: {exc.problem}",
                                  "only plain YAML is allowed: remove the !!tag")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        return None, {}, [Problem(file, line, col, "(yaml)", f"invalid YAML: {what}",
                                  "fix the syntax at this position")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(file, 1, 1, "(yaml)", f"invalid YAML: {exc}", "fix the syntax")]
    finally:
        loader.dispose()
    locs: Locs = {(): (_pos(node.start_mark), _pos(node.start_mark))}
    problems: list[Problem] = []
    _walk(node, (), locs, problems, file)
    return data, locs, problems


def _walk(node, path: tuple, locs: Locs, problems: list[Problem], file: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            sub = (*path, key)
            if key in seen:
                line, col = _pos(key_node.start_mark)
                problems.append(Problem(file, line, col, dotted(sub), "key given twice",
                                        "keep only one of them"))
            seen.add(key)
            locs[sub] = (_pos(key_node.start_mark), _pos(value_node.start_mark))
            _walk(value_node, sub, locs, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = (*path, index)
            locs[sub] = (_pos(item.start_mark), _pos(item.start_mark))
            _walk(item, sub, locs, problems, file)


def dotted(path: tuple) -> str:
    if not path:
        return "(file)"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
