"""A small HTTP/2 gRPC client over raw sockets, cheap enough per call not to be what it measures.

The Python ``grpc`` client spends about as much CPU per call as the Python server it drives, so a
benchmark made with it measures the client too. This one sends pre-built frames: the request
header block is HPACK-encoded once (static-table entries and literals without indexing, so it
keeps no dynamic-table state), and per call only the stream id and the pre-built gRPC message
differ. It advertises ``SETTINGS_HEADER_TABLE_SIZE`` 0, so the server's header blocks cannot
refer to a dynamic table either: each distinct block is decoded once (``hpack``; it refuses a
block that breaks that promise) and its ``:status`` / ``grpc-status`` remembered by its bytes.
Every call's grpc-status is read from its trailers (or a Trailers-Only answer).

Flow control both ways: a call starts only when the connection's send window holds its DATA
frame, the server's WINDOW_UPDATEs widen it, and DATA received is credited back with
WINDOW_UPDATE (connection, and a stream whose answer grows past half its window). SETTINGS are
acknowledged and PINGs answered. A request must fit in one DATA frame (16 KiB, the smallest frame
size a peer may advertise); one that does not is refused before anything is sent.

:func:`connect` opens connections; ``benchmarks.h2fleet`` drives loads on them.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence

import hpack

DATA, HEADERS, RST_STREAM, SETTINGS, PING = 0, 1, 3, 4, 6  # frame types
GOAWAY, WINDOW_UPDATE, CONTINUATION = 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_WINDOW = 65_535
MAX_DATA = 16_384  # the smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise
RECV_WINDOW = 1 << 20  # our SETTINGS_INITIAL_WINDOW_SIZE: more than any one answer here
CREDIT_STEP = 1 << 15  # connection window handed back once this much DATA has arrived
CACHED_BLOCKS = 256  # distinct response header blocks remembered per connection
_HEAD = struct.Struct(">BHBBI")

Status = int | str  # grpc-status, or what went wrong at the HTTP/2 level


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


def _int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) in a ``prefix_bits`` prefix after ``first``'s bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _str(s: str) -> bytes:
    raw = s.encode()
    return _int(len(raw), 7) + raw  # H=0: no Huffman coding


def header_block(path: str, authority: str) -> bytes:
    """A gRPC request's header block. ``:method POST`` and ``:scheme http`` are static-table
    entries (0x83, 0x86); ``:path``, ``:authority`` and ``content-type`` are literals without
    indexing on static names (4, 1, 31), ``te: trailers`` a literal with a new name."""
    block = b"\x83\x86" + _int(4, 4) + _str(path) + _int(1, 4) + _str(authority)
    return block + _int(31, 4) + _str("application/grpc") + b"\x00" + _str("te") + _str("trailers")


def grpc_frame(message: bytes) -> tuple[bytes, bytes]:
    """A call's DATA frame (END_STREAM) without its stream id: the 5 bytes before it and the
    payload after it (gRPC's uncompressed flag, 4-byte length, the message)."""
    body = b"\x00" + struct.pack(">I", len(message)) + message
    if len(body) > MAX_DATA:
        raise ValueError(f"a {len(body)}-byte request does not fit one {MAX_DATA}-byte frame")
    return frame(DATA, END_STREAM, 0, body)[:5], body


class Connection:
    """One HTTP/2 connection: calls start with :meth:`start` or :meth:`fill`, leave with
    :meth:`flush`, and come back from :meth:`receive` as ``(start_ns, tag, status)``."""

    def __init__(self, host: str, port: int, block: bytes):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.head = frame(HEADERS, END_HEADERS, 0, block)[:5]
        self.block = block
        self.next_id = 1
        # stream id -> [start_ns, tag, status or None, bytes since credit, header fragment]
        self.streams: dict[int, list] = {}
        self.send_window = DEFAULT_WINDOW
        self.peer_stream_window = DEFAULT_WINDOW
        self.peer_max_streams = 2**31 - 1
        self.unacked = 0
        self.goaway: int | None = None
        self.messages: dict[Status, str] = {}  # the first grpc-message seen per status
        self._decoder = hpack.Decoder()
        self._decoder.header_table_size = 0
        self._decoder.max_allowed_table_size = 0
        # header block -> what it says: grpc-status, "HTTP <code>" when not 200, or None
        self._blocks: dict[bytes, tuple[Status | None, str]] = {}
        self._rest = b""  # the start of a frame not yet whole
        self._wbuf = b""
        self._continuing: tuple[int, bool] | None = None  # (stream, END_STREAM) of a header split
        settings = struct.pack(">HIHIHI", 1, 0, 2, 0, 4, RECV_WINDOW)  # table 0, no push
        self._out: list[bytes] = [PREFACE, frame(SETTINGS, 0, 0, settings)]

    def can_start(self, size: int, cap: int) -> bool:
        """Whether a call of ``size`` DATA bytes may start with at most ``cap`` in flight."""
        return (
            len(self.streams) < min(cap, self.peer_max_streams)
            and self.send_window >= size <= self.peer_stream_window
            and self.goaway is None
        )

    def start(self, request: tuple[bytes, bytes], start_ns: int, tag: int) -> None:
        sid = self.next_id
        self.next_id += 2
        sid4 = sid.to_bytes(4, "big")
        self._out += (self.head, sid4, self.block, request[0], sid4, request[1])
        self.send_window -= len(request[1])
        self.streams[sid] = [start_ns, tag, None, 0, b""]

    def fill(self, requests: Sequence[tuple[bytes, bytes]], k: int, limit: int, cap: int) -> int:
        """Start requests ``k``, ``k + 1``, ... (cycling) while this connection has room and
        ``limit`` is not reached; the next ``k``."""
        now, n = time.perf_counter_ns(), len(requests)
        while k < limit and self.can_start(len(requests[k % n][1]), cap):
            self.start(requests[k % n], now, k)
            k += 1
        return k

    def flush(self) -> bool:
        """Write what is queued; True while some of it waits for the socket."""
        if self._out:
            self._wbuf += b"".join(self._out)
            self._out.clear()
        if self._wbuf:
            try:
                sent = self.sock.send(self._wbuf)
            except BlockingIOError:
                sent = 0
            self._wbuf = self._wbuf[sent:]
        return bool(self._wbuf)

    def receive(self) -> list[tuple[int, int, Status]]:
        """Read what arrived and handle every whole frame; the calls it finished."""
        data = self.sock.recv(1 << 18)
        if not data:
            raise ConnectionError("the server closed the connection")
        if self._rest:
            data = self._rest + data
        done: list[tuple[int, int, Status]] = []
        streams, blocks = self.streams, self._blocks
        pos, end = 0, len(data)
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = _HEAD.unpack_from(data, pos)
            body = pos + 9
            if end - body < (hi << 16 | lo):
                break
            pos = body + (hi << 16 | lo)
            sid &= 0x7FFFFFFF
            if ftype == HEADERS and flags & 0x2C == END_HEADERS:  # whole, no padding/priority
                block = data[body:pos]
                said = blocks.get(block) or self._decode(block)
                st = streams.get(sid)
                if st is not None:
                    if st[2] is None:
                        st[2] = said[0]
                    if flags & END_STREAM:
                        self._finish(sid, done)
            elif ftype == DATA:
                self._on_data(sid, pos - body, flags, done)
            else:
                self._on_other(ftype, flags, sid, data[body:pos], done)
        self._rest = data[pos:]
        return done

    def _on_data(self, sid: int, length: int, flags: int, done: list) -> None:
        self.unacked += length
        if self.unacked >= CREDIT_STEP:
            self._out.append(frame(WINDOW_UPDATE, 0, 0, self.unacked.to_bytes(4, "big")))
            self.unacked = 0
        st = self.streams.get(sid)
        if st is None:
            return
        st[3] += length
        if st[3] >= RECV_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, sid, st[3].to_bytes(4, "big")))
            st[3] = 0
        if flags & END_STREAM:
            self._finish(sid, done)

    def _on_other(self, ftype: int, flags: int, sid: int, payload: bytes, done: list) -> None:
        """Header blocks split or padded, and every control frame."""
        if ftype == HEADERS:
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            self._continuing = (sid, bool(flags & END_STREAM))
            self._fragment(payload, flags, done, first=True)
        elif ftype == CONTINUATION and self._continuing is not None:
            self._fragment(payload, flags, done, first=False)
        elif ftype == SETTINGS and not flags & ACK:
            for k in range(0, len(payload) - 5, 6):
                key, value = struct.unpack_from(">HI", payload, k)
                if key == 3:
                    self.peer_max_streams = value
                elif key == 4:
                    self.peer_stream_window = value
            self._out.append(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self._out.append(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE and sid == 0:
            self.send_window += int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        elif ftype == RST_STREAM:
            self._finish(sid, done, f"RST_STREAM {int.from_bytes(payload[:4], 'big')}")
        elif ftype == GOAWAY:
            last, self.goaway = struct.unpack_from(">II", payload)
            for late in [s for s in self.streams if s > last & 0x7FFFFFFF]:
                self._finish(late, done, f"GOAWAY {self.goaway}")

    def _fragment(self, payload: bytes, flags: int, done: list, first: bool) -> None:
        """A piece of the header block :attr:`_continuing` names; decoded once whole."""
        assert self._continuing is not None
        sid, end_stream = self._continuing
        st = self.streams.get(sid)
        if st is not None:
            st[4] = payload if first else st[4] + payload
        if not flags & END_HEADERS:
            return
        self._continuing = None
        if st is not None:
            said = self._decode(st[4])
            if st[2] is None:
                st[2] = said[0]
            if end_stream:
                self._finish(sid, done)

    def _decode(self, block: bytes) -> tuple[Status | None, str]:
        fields = dict(self._decoder.decode(block, raw=True))
        http, grpc_status = fields.get(b":status"), fields.get(b"grpc-status")
        status: Status | None = None
        if http is not None and http != b"200":
            status = f"HTTP {http.decode()}"
        elif grpc_status is not None:
            status = int(grpc_status)
        said = (status, fields.get(b"grpc-message", b"").decode(errors="replace"))
        if status and status not in self.messages:
            self.messages[status] = said[1]
        if len(self._blocks) < CACHED_BLOCKS:
            self._blocks[block] = said
        return said

    def _finish(self, sid: int, done: list, status: Status | None = None) -> None:
        st = self.streams.pop(sid, None)
        if st is not None:
            if status is None:
                status = st[2] if st[2] is not None else "no grpc-status"
            done.append((st[0], st[1], status))

    def close(self) -> None:
        self.sock.close()


def connect(host: str, port: int, path: str, n: int) -> list[Connection]:
    block = header_block(path, f"{host}:{port}")
    return [Connection(host, port, block) for _ in range(n)]
