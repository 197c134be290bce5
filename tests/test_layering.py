"""Which way imports go: notebooks -> agwlab -> (kubernetes | httpx) -> cluster or sandbox.

Read from the source (every import, including those inside functions; imports made only for
type checking do not count), so a cycle or a wrong-way import fails here before it confuses anyone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "agwlab"
# Modules with no state that both the lab's helpers and the sandbox use; they import only each other.
SHARED = ("agwlab.names", "agwlab.errors", "agwlab.redaction", "agwlab.wire")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    path = ROOT.parent / module.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The agwlab modules ``path`` imports (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for n in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("agwlab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("agwlab"):
                continue
            submodules = {f"{module}.{a.name}" for a in node.names if _exists(f"{module}.{a.name}")}
            found |= submodules
            if len(submodules) < len(node.names):  # something other than submodules comes from the module itself
                found.add(module)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _is(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_shared_modules_import_only_each_other():
    wrong = {m: sorted(i for i in imps if not _is(i, *SHARED)) for m, imps in MODULES.items() if _is(m, *SHARED)}
    assert {m: i for m, i in wrong.items() if i} == {}


def test_the_sandbox_imports_only_itself_and_the_shared_modules():
    wrong = {
        m: sorted(i for i in imps if not _is(i, "agwlab.sandbox", *SHARED))
        for m, imps in MODULES.items()
        if _is(m, "agwlab.sandbox")
    }
    assert {m: i for m, i in wrong.items() if i} == {}


def test_the_lab_reaches_the_sandbox_only_through_its_entry_point():
    # the command line's `sandbox` subcommand is the sandbox's own front door, paths and state included
    wrong = {
        m: sorted(i for i in imps if _is(i, "agwlab.sandbox") and i != "agwlab.sandbox")
        for m, imps in MODULES.items()
        if not _is(m, "agwlab.sandbox", "agwlab.cli")
    }
    assert {m: i for m, i in wrong.items() if i} == {}


def test_the_sandbox_store_knows_nothing_of_the_rooms_above_it():
    """The store (and the object model it uses) is below the API server, controller, proxy and kubelet."""
    below = ("agwlab.sandbox.store", "agwlab.sandbox.kinds", "agwlab.sandbox.schemas", "agwlab.sandbox.fieldsets")
    above = ("agwlab.sandbox.apiserver", "agwlab.sandbox.controller", "agwlab.sandbox.proxy",
             "agwlab.sandbox.kubelet", "agwlab.sandbox.workloads")
    wrong = {m: sorted(i for i in imps if _is(i, *above)) for m, imps in MODULES.items() if _is(m, *below)}
    assert {m: i for m, i in wrong.items() if i} == {}


@pytest.mark.parametrize("scope", ["agwlab", "agwlab.sandbox"])
def test_no_import_cycles_between_modules(scope):
    """No module imports (directly or not) one that imports it back."""
    graph: dict[str, set[str]] = {}
    for m, imps in MODULES.items():
        if m in ("agwlab", "agwlab.sandbox") or not _is(m, scope):
            continue
        graph[m] = {i for i in imps if i in MODULES and i != m and i not in ("agwlab", "agwlab.sandbox")}
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []
