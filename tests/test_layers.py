"""The layers, from the source itself: an import graph built with ``ast``.

Every import counts, including those inside functions and under ``if TYPE_CHECKING``. The
kernel (``auditor`` without ``auditor.app``) imports nothing from connectors, rules, reports or
the shell; connectors, rules and reports import only the kernel; and no module imports itself
back through a chain of imports (no cycle). ``lint-imports`` checks the same contracts from
pyproject.toml; this test also covers modules added later, which the contract must list.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("auditor", "connectors", "rules", "reports")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (a module, or the package holding an attribute)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod if is_pkg else mod.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                dep = _resolve(t, modules)
                if dep is not None and dep != mod:
                    deps.add(dep)
        graph[mod] = deps
    return graph


def _layer(mod: str) -> str:
    top = mod.split(".")[0]
    if top == "auditor":
        return "app" if mod == "auditor.app" or mod.startswith("auditor.app.") else "kernel"
    return top


def test_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    # auditor/app/run.py imports connectors.registry only inside functions
    assert "connectors.registry" in graph["auditor.app.run"]
    assert len(graph) > 70


def test_kernel_imports_nothing_from_above() -> None:
    bad = sorted(
        f"{mod} imports {dep}"
        for mod, deps in import_graph().items() if _layer(mod) == "kernel"
        for dep in deps if _layer(dep) != "kernel"
    )
    assert bad == []


def test_connectors_rules_reports_import_only_the_kernel() -> None:
    bad = sorted(
        f"{mod} imports {dep}"
        for mod, deps in import_graph().items() if _layer(mod) in ("connectors", "rules", "reports")
        for dep in deps if _layer(dep) not in ("kernel", _layer(mod))
    )
    assert bad == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    # a package importing its own submodules (re-exports) is not a cycle through the layers;
    # count only edges that do not go from a package down into itself
    edges = {
        mod: {d for d in deps if not d.startswith(mod + ".")} for mod, deps in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []
