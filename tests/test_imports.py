"""No import cycles among the modules of `suite/` and `tasks/`.

The graph is static, read with `ast` from every `.py` file under `suite/` and `tasks/`;
nothing is imported. Every import statement counts wherever it stands: at module level, in
a function (a lazy import is still a dependency), under `if TYPE_CHECKING:` (a type-only
cycle still ties two modules into one), or in a `try:`. An edge goes to the module that is
named, and only to it:

- `import suite.x.y` and `from suite.x.y import name` depend on `suite.x.y`;
- `from suite.x import y`, where `suite/x/y.py` (or `suite/x/y/`) exists, depends on the
  submodule `suite.x.y`, otherwise on `suite.x` (the name comes from its `__init__`);
- relative imports are resolved against the importing module's package.

Python also runs every parent package's `__init__` before a submodule, so in a literal
sense `suite.x.y` always depends on `suite` and `suite.x`. Those implicit edges are not
counted: with them, every package whose `__init__` re-exports its children (the small
public surface the design asks for) would be a cycle `suite.x → suite.x._a → suite.x`,
which is the normal, safe Python package pattern, and the check would flag nothing useful.
What is counted is what a module asks for by name: a child that imports a *name* from its
own package's `__init__` (`from suite.report import RunSet` inside `suite/report/_stats.py`)
does depend on the `__init__`, and if that `__init__` imports the child the two form a
real cycle, one that works only as long as the import order happens to suit it.

An `importlib.import_module("suite.x")` call with a literal name is an import like any
other (hiding a cycle behind it hides nothing); one whose name is computed (a task named
by the user, `suite.__getattr__`'s table) is not an edge, nor is an import of a module
outside `suite` and `tasks`. Cycles are the strongly connected components of
more than one module (Tarjan), plus a module that imports itself.

Print the graph's cycles (exit status 1 when there are any):

    python tests/test_imports.py
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("suite", "tasks")


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name → file, for every module and package under `packages`."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from … import` names (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    anchor = package[:len(package) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _literal_import_module(node: ast.AST) -> str | None:
    """The module an `import_module("literal")` call names (`importlib.` or bare)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if name == "import_module" and isinstance(first, ast.Constant) and isinstance(
            first.value, str) and not first.value.startswith("."):
        return first.value
    return None


def _targets(module: str, path: Path, node: ast.AST, known: set[str]) -> Iterable[str]:
    literal = _literal_import_module(node)
    if literal is not None:
        yield literal
    elif isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        base = _base(module, path, node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield sub if sub in known else base


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES
                 ) -> dict[str, set[str]]:
    """Module → the modules of `packages` it imports, anywhere in its file."""
    files = module_files(root, packages)
    known = set(files)
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(module, path, node, known):
                if target in known:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found, key=lambda c: (-len(c), c))


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """A component as its modules and the edges that tie them together."""
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "\n".join([f"cycle of {len(component)}: {', '.join(component)}", *edges])


def test_the_graph_sees_every_kind_of_import(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg._a import A\n",
        "pkg/_a.py": "import os\nimport pkg.sub.deep\nA = 1\n",
        "pkg/_b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from pkg._c import C\n",
        "pkg/_c.py": "def f():\n    from . import _d\n    from .sub import deep, thing\n",
        "pkg/_d.py": "from pkg import A\nfrom pkg.sub.deep import x\n",
        "pkg/sub/__init__.py": "from .. import _a\n",
        "pkg/sub/deep.py": "x = 1\n",
        "pkg/_e.py": "import importlib\nfrom importlib import import_module\n"
                     "def f(name):\n    importlib.import_module('pkg._b')\n"
                     "    import_module('pkg.sub.deep')\n    importlib.import_module(name)\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_graph(tmp_path, ["pkg"]) == {
        "pkg": {"pkg._a"},  # a package's own children only
        "pkg._a": {"pkg.sub.deep"},  # not pkg, pkg.sub (implicit parents); not os
        "pkg._b": {"pkg._c"},  # under TYPE_CHECKING
        # in a function, relative; `deep` is a submodule, `thing` a name of pkg.sub
        "pkg._c": {"pkg._d", "pkg.sub.deep", "pkg.sub"},
        "pkg._d": {"pkg", "pkg.sub.deep"},  # a name from the package's __init__
        "pkg.sub": {"pkg._a"},
        "pkg.sub.deep": set(),
        "pkg._e": {"pkg._b", "pkg.sub.deep"},  # literal import_module names; not `name`
    }
    # pkg -> pkg._a -> pkg.sub.deep has no way back, but pkg._d asks pkg for a name
    assert cycles(import_graph(tmp_path, ["pkg"])) == []
    (tmp_path / "pkg/_a.py").write_text("from pkg._d import x\n")
    assert cycles(import_graph(tmp_path, ["pkg"])) == [["pkg", "pkg._a", "pkg._d"]]


def test_the_repository_graph_holds_lazy_imports():
    graph = import_graph()
    assert "suite.commands" in graph["suite.cli"]  # in main(), after parsing
    assert "suite.report._figures" in graph["suite.report._sec_anytime"]
    assert "suite" not in graph["suite.report._sec_anytime"]


def test_cycles_finds_a_cycle_and_a_self_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["d"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    for component in found:
        print(describe(component, graph))
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def main() -> int:
    graph = import_graph()
    found = cycles(graph)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {edges} import edges, {len(found)} cycles")
    for component in found:
        print(describe(component, graph))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
