"""The import graph of odop and odop_obs has no cycle: every import counts, those inside
functions and under TYPE_CHECKING too (a cycle is a knot in the design even when Python
can load it). A failure names each cycle and the imports that tie it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("odop", "odop_obs")


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that the file at ``path`` imports, wherever it does."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] or [node.module]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {name: imports(path, known) - {name} for name, path in known.items()}
    # a package's __init__ that imports its own submodules is how Python loads them
    return {name: {t for t in targets if not name.startswith(t + ".")}
            for name, targets in edges.items()}


def test_the_import_graph_has_no_cycle() -> None:
    g = graph()
    found = cycles(g)
    ties = [" ; ".join(f"{a} -> {b}" for a in c for b in sorted(g[a]) if b in c) for c in found]
    assert not found, "import cycles:\n" + "\n".join(ties)


def test_the_walk_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# -- the map in docs/architecture.md -------------------------------------------------------
DOC = REPO / "docs" / "architecture.md"


def the_map() -> str:
    text = DOC.read_text()
    start = text.index("## The map")
    return text[start:text.index("\n## ", start + 5)]


def _unit(module: str) -> str:
    """The package or top-level module a module belongs to, as the map names it."""
    parts = module.split(".")
    if parts[0] == "odop_obs":
        return "odop_obs"
    if len(parts) == 1:
        return "odop/__init__.py"
    path = REPO / "odop" / parts[1]
    return f"odop/{parts[1]}" if path.is_dir() else f"odop/{parts[1]}.py"


def _as_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def rules() -> list[tuple[list[str], list[str]]]:
    """(units, what they may import) of each row of the map's table."""
    rows = []
    for line in the_map().splitlines():
        cells = line.split("|")[1:-1]
        if len(cells) != 2 or "`" not in cells[0]:
            continue
        names = [re.findall(r"`([^`]+)`", c) for c in cells]
        allowed = ["anything"] if cells[1].strip() == "anything" else names[1]
        rows.append((names[0], [] if "nothing" in cells[1] else allowed))
    return rows


def test_every_import_is_one_the_map_allows() -> None:
    table = rules()
    assert table, "docs/architecture.md: the map has no table of imports"
    wrong = []
    for source, targets in graph().items():
        unit = _unit(source)
        row = [allowed for units, allowed in table if unit in units]
        assert row, f"{unit} ({source}) is in no row of the map's table"
        if row[0] == ["anything"]:
            continue
        for target in targets:
            there, path = _unit(target), _as_path(target)
            ok = there == unit or any(there == a or path == a or path.startswith(a + "/")
                                      for a in row[0])
            if not ok:
                wrong.append(f"{source} -> {target}")
    assert not wrong, "imports the map of docs/architecture.md does not allow:\n" + \
        "\n".join(sorted(wrong))


def test_the_map_names_modules_and_functions_that_exist() -> None:
    text = the_map()
    files = sorted(set(re.findall(r"`(odop(?:_obs)?/[\w/]+\.py)`", text)))
    assert files and all((REPO / f).exists() for f in files), \
        [f for f in files if not (REPO / f).exists()]
    defined: set[str] = set()
    for f in files:
        for node in ast.walk(ast.parse((REPO / f).read_text())):
            if isinstance(node, ast.ClassDef):
                defined |= {f"{node.name}.{n.name}" for n in node.body
                            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined.add(node.name)
    named = set(re.findall(r"`([A-Z]\w+\.\w+)`", text))
    assert named and named <= defined, sorted(named - defined)
