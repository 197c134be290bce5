"""``pods/portforward``: TCP to a Pod's port through the API server, as kubectl and the client do it.

Two WebSocket subprotocols are spoken on ``/api/v1/namespaces/NS/pods/NAME/portforward``:

* ``v4.channel.k8s.io`` (the ``kubernetes`` Python client): ``?ports=P1,P2``; channel ``2i``
  carries the data of the i-th port and ``2i+1`` its errors; each channel's first message
  from the server is the port number (two bytes, little-endian).
* ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.31 and later): a SPDY/3.1 session inside binary
  WebSocket messages. Per local connection kubectl opens an ``error`` and a ``data`` stream
  (headers ``streamType``, ``port``, ``requestID``); the server dials the Pod's port and relays.

A plain HTTP request (the legacy ``Upgrade: SPDY/3.1`` path) gets ``400`` so kubectl stays on
the WebSocket path. A Pod's ports are reached at its Pod IP, as a kubelet reaches them inside
the Pod's network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .spdy import Framer, ProtocolError

__all__ = ["CHANNEL_PROTOCOL", "SPDY_PROTOCOL", "portforward_endpoint"]

log = logging.getLogger(__name__)

CHANNEL_PROTOCOL = "v4.channel.k8s.io"
SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
_CHUNK = 64 * 1024


def _offered(websocket: WebSocket) -> list[str]:
    offered = list(websocket.scope.get("subprotocols") or [])
    raw = websocket.headers.get("sec-websocket-protocol", "")
    return offered or [p.strip() for p in raw.split(",") if p.strip()]


async def _deny(websocket: WebSocket, code: int, body: dict[str, Any]) -> None:
    """Refuse the upgrade with an HTTP status where the server can, else close the socket."""
    from starlette.responses import JSONResponse

    if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=code))
    else:
        await websocket.close(code=1008, reason=str(body.get("message", ""))[:120])


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def portforward_endpoint(store: Any, authorize: Callable[[Any], None]) -> Callable[[WebSocket], Any]:
    """The WebSocket endpoint; ``authorize(connection)`` raises to refuse a caller."""

    async def endpoint(websocket: WebSocket) -> None:
        try:
            authorize(websocket)
        except Exception as exc:  # noqa: BLE001 - whatever refuses the caller answers the upgrade
            body = getattr(exc, "body", None) or _status(401, "Unauthorized", "Unauthorized")
            await _deny(websocket, int(body.get("code", 401)), body)
            return
        ns, name = websocket.path_params["namespace"], websocket.path_params["name"]
        pod = store.get("", "pods", ns, name)
        if pod is None:
            await _deny(websocket, 404, {**_status(404, "NotFound", f'pods "{name}" not found'),
                                         "details": {"name": name, "kind": "pods"}})
            return
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if status.get("phase") != "Running" or not ip:
            await _deny(websocket, 400, _status(
                400, "BadRequest",
                f"unable to upgrade connection: pod {name} is not running (phase {status.get('phase')})"))
            return
        offered = _offered(websocket)
        uid = (pod.get("metadata") or {}).get("uid", "")
        where = _Where(ip=ip, ns=ns, name=name, uid=uid)
        if SPDY_PROTOCOL in offered:
            await websocket.accept(subprotocol=SPDY_PROTOCOL)
            await _SpdySession(websocket, where).run()
        elif CHANNEL_PROTOCOL in offered:
            ports = _ports(websocket.query_params.getlist("ports") + websocket.query_params.getlist("port"))
            if not ports:
                await _deny(websocket, 400, _status(400, "BadRequest", 'query parameter "ports" is required'))
                return
            await websocket.accept(subprotocol=CHANNEL_PROTOCOL)
            await _channels(websocket, where, ports)
        else:
            await _deny(websocket, 400, _status(
                400, "BadRequest",
                f"unsupported subprotocol(s) {offered or 'none'}: use {SPDY_PROTOCOL} or {CHANNEL_PROTOCOL}"))

    return endpoint


def _ports(values: list[str]) -> list[int]:
    out = []
    for value in values:
        for part in value.split(","):
            if part.strip().isdigit() and 0 < int(part) < 65536:
                out.append(int(part))
    return out


@dataclass
class _Where:
    ip: str
    ns: str
    name: str
    uid: str

    def refused(self, port: int, exc: OSError) -> str:
        # the kubelet's wording, so a learner can search for it
        return (f"error forwarding port {port} to pod {self.uid}, uid : failed to connect to "
                f"localhost:{port} inside namespace {self.ns}/{self.name}: {exc.strerror or exc}")


async def _dial(where: _Where, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(where.ip, port), 10)


# -- v4.channel.k8s.io ---------------------------------------------------------------------------

async def _channels(websocket: WebSocket, where: _Where, ports: list[int]) -> None:
    lock = asyncio.Lock()
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []

    async def send(channel: int, data: bytes) -> None:
        async with lock:
            await websocket.send_bytes(bytes((channel,)) + data)

    async def pump(index: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            while chunk := await reader.read(_CHUNK):
                await send(2 * index, chunk)

    for index, port in enumerate(ports):
        prefix = port.to_bytes(2, "little")
        await send(2 * index, prefix)
        await send(2 * index + 1, prefix)
        try:
            reader, writer = await _dial(where, port)
        except (OSError, TimeoutError) as exc:
            await send(2 * index + 1, where.refused(port, exc if isinstance(exc, OSError) else OSError(
                110, "connection timed out")).encode())
            continue
        writers[index] = writer
        pumps.append(asyncio.create_task(pump(index, reader)))

    async def inbound() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or b""
            if len(data) < 1 or data[0] % 2:
                continue
            writer = writers.get(data[0] // 2)
            if writer is not None and len(data) > 1:
                writer.write(data[1:])
                await writer.drain()

    reading = asyncio.create_task(inbound())
    try:
        if pumps:
            # the forward ends when the Pod side of every port has closed, or the client leaves
            either: list[asyncio.Future[Any]] = [reading, asyncio.gather(*pumps)]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.wait_for(asyncio.shield(reading), 1)
    except (TimeoutError, OSError):
        pass
    finally:
        reading.cancel()
        for task in pumps:
            task.cancel()
        for writer in writers.values():
            writer.close()
        with contextlib.suppress(Exception):
            await websocket.close()


# -- SPDY/3.1 over WebSocket ---------------------------------------------------------------------

@dataclass
class _Pair:
    port: int
    error: int | None = None
    data: int | None = None
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    pending: list[bytes] = field(default_factory=list)
    client_done: bool = False


class _SpdySession:
    def __init__(self, websocket: WebSocket, where: _Where) -> None:
        self.ws = websocket
        self.where = where
        self.framer = Framer()
        self.lock = asyncio.Lock()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, tuple[str, str]] = {}
        self.last_stream = 0

    async def send(self, frame: bytes) -> None:
        async with self.lock:
            await self.ws.send_bytes(frame)

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                chunk = message.get("bytes") or (message.get("text") or "").encode()
                for frame in self.framer.feed(chunk):
                    if not await self.handle(frame):
                        return
        except (ProtocolError, WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.debug("port-forward session for %s/%s ended: %s", self.where.ns, self.where.name, exc)
        finally:
            for pair in self.pairs.values():
                if pair.task is not None:
                    pair.task.cancel()
                if pair.writer is not None:
                    pair.writer.close()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def handle(self, frame: Any) -> bool:
        if frame.kind == "syn_stream":
            self.last_stream = max(self.last_stream, frame.stream_id)
            await self.send(self.framer.syn_reply(frame.stream_id))
            kind = frame.headers.get("streamtype", "")
            request = frame.headers.get("requestid", str(frame.stream_id))
            port_text = frame.headers.get("port", "")
            if kind not in ("error", "data") or not port_text.isdigit():
                await self.send(self.framer.rst_stream(frame.stream_id, 1))
                return True
            pair = self.pairs.setdefault(request, _Pair(port=int(port_text)))
            setattr(pair, kind, frame.stream_id)
            self.by_stream[frame.stream_id] = (request, kind)
            if pair.error is not None and pair.data is not None and pair.task is None:
                pair.task = asyncio.create_task(self.forward(pair))
        elif frame.kind == "data":
            request, kind = self.by_stream.get(frame.stream_id, ("", ""))
            sending = self.pairs.get(request)
            if sending is None or kind != "data":
                return True
            if frame.data:
                if sending.writer is None:
                    sending.pending.append(frame.data)
                else:
                    sending.writer.write(frame.data)
                    await sending.writer.drain()
            if frame.fin:
                sending.client_done = True
                if sending.writer is not None and sending.writer.can_write_eof():
                    sending.writer.write_eof()
        elif frame.kind == "rst_stream":
            request, _kind = self.by_stream.pop(frame.stream_id, ("", ""))
            reset = self.pairs.get(request)
            if reset is not None and reset.writer is not None:
                reset.writer.close()
        elif frame.kind == "ping":
            await self.send(self.framer.ping(frame.value))
        elif frame.kind == "goaway":
            return False
        return True

    async def forward(self, pair: _Pair) -> None:
        assert pair.data is not None and pair.error is not None
        try:
            reader, writer = await _dial(self.where, pair.port)
        except (OSError, TimeoutError) as exc:
            err = exc if isinstance(exc, OSError) else OSError(110, "connection timed out")
            with contextlib.suppress(Exception):
                await self.send(self.framer.data(pair.error, self.where.refused(pair.port, err).encode(), fin=True))
                await self.send(self.framer.data(pair.data, b"", fin=True))
            return
        pair.writer = writer
        for chunk in pair.pending:
            writer.write(chunk)
        pair.pending.clear()
        if pair.client_done and writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            await writer.drain()
            while chunk := await reader.read(_CHUNK):
                await self.send(self.framer.data(pair.data, chunk))
        with contextlib.suppress(Exception):
            await self.send(self.framer.data(pair.data, b"", fin=True))
            await self.send(self.framer.data(pair.error, b"", fin=True))
        writer.close()
