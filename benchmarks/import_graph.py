"""The package's import graph: circles and module sizes.

Every ``import``/``from ... import`` of an hsizoo module anywhere in a file (function-level ones
included) is an edge; a package ``__init__`` counts as a module. Prints the circles (strongly
connected components of more than one module) and the modules over the size limit, and exits 1
when there are any::

    python benchmarks/import_graph.py [--max-lines 500]
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hsizoo"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The hsizoo modules a file imports (``from pkg import mod`` resolves to the submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "hsizoo":
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "hsizoo":
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add(sub if sub in modules else mod)
    return {m for m in out if m in modules and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-lines", type=int, default=500)
    args = ap.parse_args()
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(f) for f in files}
    # Importing a submodule runs its package's __init__: "hsizoo.a.b" depends on "hsizoo.a" only
    # through that, which is not an import circle of the code, so packages are edges only when
    # a file imports them by name.
    graph = {module_name(f): imports_of(f, modules) for f in files}
    found = circles(graph)
    big = [(module_name(f), n) for f in files if (n := len(f.read_text().splitlines())) > args.max_lines]
    print(f"{len(modules)} modules, {sum(len(f.read_text().splitlines()) for f in files)} lines")
    for c in found:
        print("circle:", " <-> ".join(c))
    for m, n in big:
        print(f"over {args.max_lines} lines: {m} ({n})")
    if not found and not big:
        print("no circles; every module within", args.max_lines, "lines")
    return 1 if found or big else 0


if __name__ == "__main__":
    sys.exit(main())
