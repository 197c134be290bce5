"""What travels on the wire, shared by the lab's clients and the sandbox.

Protocol code only, no state and no I/O of its own: Server-Sent Events framing
(:mod:`agwlab.wire.sse`) and JSON-RPC/MCP messages (:mod:`agwlab.wire.jsonrpc`). The lab's
MCP client shows learners these frames exactly as they travel; the sandbox's gateway and
workloads speak them. Like :mod:`agwlab.names`, nothing here imports the rest of agwlab,
so the sandbox may import it.
"""

__all__ = ["jsonrpc", "sse"]
