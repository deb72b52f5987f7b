"""The package's shape: no import cycle, CLIs that do not import each other, layers kept apart.

The one home for import-graph checks: cycles at import time (importing
``a.b.c`` also runs the packages ``a`` and ``a.b``) and cycles that count
imports deferred into functions; the weights-format layer (``epic_zoo.weights``)
never reaching the models; no lazy re-export (module ``__getattr__``); a
library layer free of CLIs and Lightning.

Read from the source with :mod:`ast` (nothing is imported), so a violation is
reported by module and line. The rule (docs/api.md): a library layer (metrics,
plots, data readers) never imports a CLI or the Lightning layer; CLIs import
libraries, never each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import epic_zoo

PACKAGE_DIR = Path(epic_zoo.__file__).resolve().parent

CLIS: dict[str, tuple[str, ...]] = {
    # CLI -> its entry module(s); the first that exists is the CLI
    "run": ("epic_zoo.run",),
    "evaluate": ("epic_zoo.evaluate",),
    "bench": ("epic_zoo.bench.cli", "epic_zoo.bench.__main__", "epic_zoo.bench"),
    "hub": ("epic_zoo.hub.cli", "epic_zoo.hub.__main__", "epic_zoo.hub"),
    "compare": ("epic_zoo.compare",),
    "data": ("epic_zoo.data.__main__",),
    "deploy": ("epic_zoo.deploy.__main__",),
}
LIBRARY_LAYER: tuple[str, ...] = (
    "epic_zoo.metrics",
    "epic_zoo.plots",
    "epic_zoo.provenance",
    "epic_zoo.tables",
)
"""Modules the tasks and the CLIs share: they import neither (nor Lightning)."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """``(imported epic_zoo module, line)`` for each import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue  # not imported at run time
            yield node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not top_level_only:
                    yield from (n for n in ast.walk(node) if isinstance(n, ast.stmt))
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        yield from visit(
                            child.body if isinstance(child, ast.ExceptHandler) else [child]
                        )

    for node in visit(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("epic_zoo"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    yield sub, node.lineno
                elif target in MODULES:
                    yield target, node.lineno


def _with_packages(module: str, targets: set[str]) -> set[str]:
    """``targets`` plus the packages importing them runs, except ``module``'s own (already running)."""
    own = {module.rsplit(".", k)[0] for k in range(module.count(".") + 1)}
    found = set(targets)
    for target in targets:
        while "." in target:
            target = target.rpartition(".")[0]
            found.add(target)
    return found - own


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    """``{module: epic_zoo modules it imports}``; at top level, with the packages that runs."""
    graph = {}
    for m in MODULES:
        targets = {t for t, _ in _imports(m, top_level_only=top_level_only)}
        graph[m] = (_with_packages(m, targets) if top_level_only else targets) - {m}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _cli_module(name: str) -> str | None:
    return next((m for m in CLIS[name] if m in MODULES), None)


def test_the_graph_sees_known_imports() -> None:
    graph = _graph(top_level_only=True)
    assert "epic_zoo.data.geometry" in graph["epic_zoo.data.timeaxis"]
    assert "epic_zoo.metrics" in graph["epic_zoo.tasks.inversion"]
    assert (
        "epic_zoo.weights" in graph["epic_zoo.models.builder"]
    )  # importing weights.files runs weights/
    assert "epic_zoo.models" not in graph["epic_zoo.models.builder"]  # its own package
    assert "epic_zoo.models.factory" in _graph(top_level_only=False)["epic_zoo.hub.loader"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_at_import_time() -> None:
    cycles = _cycles(_graph(top_level_only=True))
    assert not cycles, f"import cycles among module-level imports: {cycles}"


def test_no_import_cycle_counting_deferred_imports() -> None:
    cycles = _cycles(_graph(top_level_only=False))
    assert not cycles, f"import cycles through function-level imports: {cycles}"


WEIGHTS_LAYER: tuple[str, ...] = tuple(
    m for m in MODULES if m.split(".")[:2] == ["epic_zoo", "weights"]
)
"""The weights format (files, folder, card, registry, resolve, runs, spec): below the models."""
ABOVE_WEIGHTS: tuple[str, ...] = (
    "epic_zoo.models",
    "epic_zoo.hub",
    "epic_zoo.tasks",
    "epic_zoo.bench",
    "epic_zoo.deploy",
    "epic_zoo.hardware",
    "epic_zoo.run",
    "epic_zoo.run_callbacks",
    "epic_zoo.evaluate",
    "epic_zoo.evaluation",
    "epic_zoo.compare",
)
"""Packages and modules that build or use networks: the weights-format layer imports none."""


def test_the_weights_layer_is_found() -> None:
    assert {"epic_zoo.weights.folder", "epic_zoo.weights.spec"} <= set(WEIGHTS_LAYER)
    assert not [
        m
        for m in MODULES
        if m.startswith("epic_zoo.hub.")
        and m.rpartition(".")[2]
        in ("errors", "files", "folder", "card", "registry", "resolve", "runs", "spec")
    ], "weights-format modules belong in epic_zoo.weights, not epic_zoo.hub"


@pytest.mark.parametrize("module", WEIGHTS_LAYER)
def test_weights_layer_never_imports_models_or_above(module: str) -> None:
    bad = {
        (t, line)
        for t, line in _imports(module, top_level_only=False)
        if any(t == up or t.startswith(up + ".") for up in ABOVE_WEIGHTS)
    }
    assert not bad, f"{module} imports a layer above the weights format: {sorted(bad)}"


@pytest.mark.parametrize(
    "module", ["epic_zoo.hub.loader", "epic_zoo.hub.export", "epic_zoo.hub.publish"]
)
def test_hub_sits_above_models(module: str) -> None:
    """Loading, export and publishing build networks: they import the models layer."""
    targets = {t for t, _ in _imports(module, top_level_only=True)}
    assert any(t.startswith("epic_zoo.models") for t in targets), f"{module} imports no model"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_lazy_module_getattr(module: str) -> None:
    """No module-level ``__getattr__`` / ``__dir__``: every name is a plain import."""
    tree = ast.parse(MODULES[module].read_text())
    lazy = [
        node.lineno
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in ("__getattr__", "__dir__")
    ]
    assert not lazy, f"{module} defines a module-level __getattr__/__dir__ at lines {lazy}"


@pytest.mark.parametrize("module", LIBRARY_LAYER)
def test_library_layer_imports_no_cli_and_no_lightning(module: str) -> None:
    source = MODULES[module].read_text()
    assert "lightning" not in source.replace("Lightning", ""), f"{module} mentions lightning"
    clis = {_cli_module(c) for c in CLIS} - {None}
    bad = {t for t, _ in _imports(module, top_level_only=False) if t in clis}
    assert not bad, f"{module} imports the CLI modules {bad}"


@pytest.mark.parametrize(("cli", "other"), [(a, b) for a in CLIS for b in CLIS if a != b])
def test_clis_do_not_import_each_other(cli: str, other: str) -> None:
    source, target = _cli_module(cli), _cli_module(other)
    if source is None or target is None:
        pytest.skip(f"no module for the {cli if source is None else other} CLI")
    if target == "epic_zoo.bench" and source.startswith("epic_zoo.bench"):
        pytest.skip("one package")
    lines = [line for t, line in _imports(source, top_level_only=False) if t == target]
    assert not lines, f"{source} imports the {other} CLI ({target}) at lines {lines}"


def test_one_home_for_bytes_on_the_wire() -> None:
    """Raw record sizes and "is this model distributed?" are defined once, in epic_zoo.wire."""
    homes: dict[str, list[str]] = {"is_distributed": [], "raw_payload_bytes": [], "link_bytes": []}
    ad_hoc = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in homes:
                homes[node.name].append(module)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "hasattr"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "payload_bytes"
            ):
                ad_hoc.append(f"{module}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Name)
                and node.args[1].id == "DistributedModel"
                and module != "epic_zoo.models.distributed"
            ):
                ad_hoc.append(f"{module}:{node.lineno}")
    assert homes == {k: ["epic_zoo.wire"] for k in homes}, homes
    assert not ad_hoc, f"ad-hoc 'is distributed' tests (use epic_zoo.wire.is_distributed): {ad_hoc}"
    assert not [t for t, _ in _imports("epic_zoo.wire", top_level_only=False) if "models" in t]


def test_plots_do_not_reach_up_to_the_models() -> None:
    bad = [t for t, _ in _imports("epic_zoo.plots", top_level_only=False) if "models" in t]
    assert not bad, f"epic_zoo.plots imports {bad}"
