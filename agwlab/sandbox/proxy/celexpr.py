"""CEL conditions of policies, evaluated against a request as agentgateway v1.4.1 does.

A policy's ``condition`` sees the variables agentgateway's request executor binds
(``crates/agentgateway/src/cel/types.rs``): ``request`` (``method``, ``path``, ``host``,
``scheme``, ``uri``, ``headers`` keyed by lower-case name) and ``source`` (``address``,
``port``); ``jwt`` (its ``claims``) once a JWT was verified. As in v1.4.1, an expression that
fails to compile or evaluate (a missing header, a type error) counts as ``false``.

Example:
    >>> holds('request.headers["x-team"] == "blue"', {"request": {"headers": {"x-team": "blue"}}})
    True
    >>> holds('request.headers["x-team"] == "blue"', {"request": {"headers": {}}})
    False
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["holds", "request_variables"]


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    import cel  # the Rust CEL implementation, loaded once a policy has a condition

    try:
        return cel.compile(expression)
    except Exception:  # noqa: BLE001 - an expression that does not compile never holds
        return None


def request_variables(method: str, path: str, host: str, headers: dict[str, str], src_addr: str,
                      jwt_claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CEL variables for one request (see the module docstring)."""
    address, _, port = src_addr.rpartition(":")
    plain = path.split("?", 1)[0]
    variables: dict[str, Any] = {
        "request": {"method": method, "path": plain, "host": host, "scheme": "http",
                    "uri": f"http://{host}{path}", "headers": {k.lower(): v for k, v in headers.items()}},
        "source": {"address": address, "port": int(port) if port.isdigit() else 0},
    }
    if jwt_claims is not None:
        variables["jwt"] = {"claims": jwt_claims, **jwt_claims}
    return variables


def holds(expression: str, variables: dict[str, Any]) -> bool:
    """Whether ``expression`` evaluates to ``true`` with ``variables`` bound."""
    program = _program(expression)
    if program is None:
        return False
    import cel

    context = cel.Context()
    for name, value in variables.items():
        context.add_variable(name, value)
    try:
        return program.execute(context) is True
    except Exception:  # noqa: BLE001 - evaluation errors (missing keys...) count as false
        return False
