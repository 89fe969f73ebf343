"""The package boundaries (docs/architecture.md): web and CLI frameworks only at the edges, the query
side free of ingestion, no import cycles. Read from the source with ast, so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("km_search", "ingest", "evaluation")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, top_level_only: bool = False) -> set[str]:
    """Every module this one imports (relative imports resolved); with top_level_only, only the
    imports that run when the module is imported (not those inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


MODULES = _modules()


def _violations(rule) -> list[str]:
    return sorted(f"{name} imports {target}" for name, path in MODULES.items()
                  for target in _imports(name, path) if rule(name, target))


def _is(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_fastapi_only_in_http():
    assert _violations(lambda m, t: (_is(t, "fastapi") or _is(t, "starlette")) and not _is(m, "km_search.http")) == []


def test_typer_only_in_cli():
    assert _violations(lambda m, t: _is(t, "typer") and not _is(m, "km_search.cli")) == []


def test_ray_only_in_the_cluster_modules():
    assert _violations(lambda m, t: _is(t, "ray") and not (_is(m, "km_search.cluster") or m == "ingest.cluster")) == []


def test_query_side_never_imports_ingestion():
    edges = ("km_search.http", "km_search.cli")
    assert _violations(lambda m, t: _is(m, "km_search") and not any(_is(m, e) for e in edges) and _is(t, "ingest")) == []


def test_only_entry_points_import_the_http_app():
    assert _violations(lambda m, t: _is(t, "km_search.http.app") and not _is(m, "km_search.cli")) == []


def test_the_core_imports_no_edge_and_no_evaluation():
    core = lambda m: _is(m, "km_search") and not (_is(m, "km_search.http") or _is(m, "km_search.cli"))  # noqa: E731
    edge = lambda t: _is(t, "km_search.http") or _is(t, "km_search.cli") or _is(t, "evaluation")  # noqa: E731
    assert _violations(lambda m, t: core(m) and edge(t)) == []
    assert _violations(lambda m, t: _is(m, "ingest") and edge(t)) == []


def test_no_import_cycles():
    """Module-level imports among our modules form no cycle (Tarjan's strongly connected components)."""
    graph = {name: {t for t in _imports(name, path, top_level_only=True) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

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
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_top_level_stays_small():
    top = sorted(p.name for p in (ROOT / "km_search").glob("*.py"))
    assert len(top) <= 10, top


def test_the_rules_can_fail():
    """The checks see real imports: the HTTP app does import fastapi, the CLI typer, the edges ingest."""
    assert "fastapi" in _imports("km_search.http.app", MODULES["km_search.http.app"])
    assert _violations(lambda m, t: _is(t, "typer")) != []
    assert _violations(lambda m, t: _is(m, "km_search.cli") and _is(t, "ingest")) != []
