"""The module-level import graph of epic_zoo has no cycle (imports inside functions excluded)."""

from __future__ import annotations

import ast
from pathlib import Path

import epic_zoo

ROOT = Path(epic_zoo.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """epic_zoo modules imported at module level (``if TYPE_CHECKING`` blocks skipped).

    Importing ``a.b.c`` also runs the packages ``a`` and ``a.b``, except those the
    importing module lives in (already being initialised).
    """
    own = _module_name(path)
    ancestors = {own.rsplit(".", k)[0] for k in range(1, own.count(".") + 1)} | {own}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    body = [
        n for n in tree.body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test))
    ]
    for node in body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
                parent = name.rpartition(".")[0]
                while parent:
                    found.add(parent)
                    parent = parent.rpartition(".")[0]
    return found - ancestors


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    return {m: _top_level_imports(p, modules) - {m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_epic_zoo_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_hub_lower_layer_never_imports_models() -> None:
    graph = import_graph()
    lower = ["errors", "files", "registry", "folder", "card", "resolve", "runs", "spec"]
    for name in ["epic_zoo.hub", *(f"epic_zoo.hub.{m}" for m in lower)]:
        assert not {m for m in graph[name] if m.startswith("epic_zoo.models")}, name
