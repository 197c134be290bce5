"""SPDY/3.1 framing: the part a port-forward server needs.

kubectl port-forward multiplexes its connections over SPDY/3.1 streams (tunnelled in
WebSocket binary messages since kubectl 1.31). This module turns bytes into frames and
frames into bytes: SYN_STREAM (with its zlib-compressed header block), SYN_REPLY, DATA,
RST_STREAM, SETTINGS, PING, GOAWAY and WINDOW_UPDATE. Flow-control windows are not
enforced, as Go's ``spdystream`` (kubectl's side) does not enforce them either.

Example:
    >>> server = Framer()
    >>> frames = server.feed(Framer(client=True).syn_stream(1, {"streamtype": "data", "port": "8080"}))
    >>> frames[0].kind, frames[0].stream_id, frames[0].headers["port"]
    ('syn_stream', 1, '8080')
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["Frame", "Framer", "ProtocolError", "header_dictionary"]

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5

_NAMES = {SYN_STREAM: "syn_stream", SYN_REPLY: "syn_reply", RST_STREAM: "rst_stream", SETTINGS: "settings",
          PING: "ping", GOAWAY: "goaway", HEADERS: "headers", WINDOW_UPDATE: "window_update"}

# SPDY/3 compresses header blocks with a fixed zlib dictionary (spec section 2.6.10.1):
# length-prefixed common header names and values, then a run of common fragments.
_DICT_WORDS = ["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection", "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def header_dictionary() -> bytes:
    """The SPDY/3 header-compression dictionary (1423 bytes)."""
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()


_DICTIONARY = header_dictionary()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1."""


@dataclass
class Frame:
    """One decoded frame. ``kind`` is ``data`` or a control frame's name."""

    kind: str
    stream_id: int = 0
    flags: int = 0
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    value: int = 0  # PING id, RST/GOAWAY status, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Framer:
    """Both directions of one SPDY session: :meth:`feed` parses, the other methods build frames.

    Each direction has one zlib stream for header blocks, shared by all its frames.
    """

    def __init__(self, *, client: bool = False) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=_DICTIONARY)
        self._deflate = zlib.compressobj(zdict=_DICTIONARY)
        self.client = client

    # -- reading -----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add bytes from the peer; return every frame now complete."""
        self._buffer += chunk
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._decode(head, payload))
        return frames

    def _decode(self, head: bytes, payload: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame("data", int.from_bytes(head[:4], "big") & 0x7FFFFFFF, flags, payload)
        version = int.from_bytes(head[:2], "big") & 0x7FFF
        ftype = int.from_bytes(head[2:4], "big")
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, expected {VERSION}")
        kind = _NAMES.get(ftype, f"unknown-{ftype}")
        if ftype in (SYN_STREAM, SYN_REPLY, HEADERS):
            offset = 10 if ftype == SYN_STREAM else 4
            if len(payload) < offset:
                raise ProtocolError(f"{kind} frame too short")
            sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            return Frame(kind, sid, flags, headers=self._headers(payload[offset:]))
        if ftype in (RST_STREAM, WINDOW_UPDATE) and len(payload) >= 8:
            sid, value = struct.unpack(">II", payload[:8])
            return Frame(kind, sid & 0x7FFFFFFF, flags, value=value & 0x7FFFFFFF)
        if ftype == PING and len(payload) >= 4:
            return Frame(kind, flags=flags, value=struct.unpack(">I", payload[:4])[0])
        if ftype == GOAWAY and len(payload) >= 8:
            sid, status = struct.unpack(">II", payload[:8])
            return Frame(kind, sid & 0x7FFFFFFF, flags, value=status)
        return Frame(kind, flags=flags, data=payload)

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from None
        out: dict[str, str] = {}
        (count,), pos = struct.unpack(">I", raw[:4]), 4
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            name = raw[pos + 4:pos + 4 + n].decode("latin-1").lower()
            pos += 4 + n
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            value = raw[pos + 4:pos + 4 + n].decode("latin-1")
            pos += 4 + n
            out[name] = value.split("\x00")[0]
        return out

    # -- writing -----------------------------------------------------------------------------

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            n, v = name.lower().encode("latin-1"), value.encode("latin-1")
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, fin: bool = False) -> bytes:
        """Open a stream (what a client sends)."""
        payload = struct.pack(">IIH", stream_id, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, payload)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, *, fin: bool = False) -> bytes:
        """Accept a stream the peer opened."""
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0,
                             struct.pack(">I", stream_id) + self._block(headers or {}))

    @staticmethod
    def data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
        """Stream data; ``fin`` half-closes the stream from this side."""
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))
