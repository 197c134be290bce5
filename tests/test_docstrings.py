"""Every example in agwlab's docstrings runs, against the session's sandbox where it needs a cluster."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import agwlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(agwlab.__path__, "agwlab.") if not m.name.endswith("__main__"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(module) if t.examples]


def _prepare(*stages: str) -> None:
    from agwlab import connect
    from agwlab.stages import prepare

    prepare(connect(), *stages)


@pytest.mark.parametrize("name", [m for m in MODULES if _examples(m)])
def test_docstring_examples_run(name: str, request: pytest.FixtureRequest) -> None:
    tests = _examples(name)
    sources = "".join(e.source for t in tests for e in t.examples if not e.options.get(doctest.SKIP))
    if "connect(" in sources:
        request.getfixturevalue("sandbox")
        # what a learner has applied by then: the MCP stage only where the example calls tools
        _prepare("llm", "tracing", *(["mcp"] if "agent.run(" in sources else []))
    failures = []
    for test in tests:
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        report: list[str] = []
        runner.run(test, out=report.append)
        if runner.failures:
            failures.append("".join(report))
    assert not failures, "\n".join(failures)
