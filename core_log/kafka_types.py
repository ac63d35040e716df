"""Kafka's primitive binary types (big-endian), for the few payloads the engine stores as Kafka does.

The consumer protocol (what a member says in JoinGroup and gets in SyncGroup)
and the records of ``__consumer_offsets`` are plain byte strings built from
Kafka's classic (non-flexible) primitives: INT16/INT32/INT64, STRING (INT16
length, -1 = null), BYTES (INT32 length, -1 = null) and ARRAY (INT32 count).
:class:`Writer` builds them; :class:`Reader` parses them and raises
:class:`ProtocolDecodeError` — and nothing else — on any malformed input, so a
bad payload from a client is a named error, never a crash.
"""

from __future__ import annotations

import struct

from core_log.errors import CoreLogError

MAX_STRING_BYTES = 32_767
MAX_ARRAY_ITEMS = 100_000

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class ProtocolDecodeError(CoreLogError, ValueError):
    """Bytes that should hold a Kafka protocol structure do not (truncated, bad length, bad UTF-8)."""

    kafka_name = "INVALID_REQUEST"


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def int8(self, v: int) -> "Writer":
        self.out += _I8.pack(v)
        return self

    def int16(self, v: int) -> "Writer":
        self.out += _I16.pack(v)
        return self

    def int32(self, v: int) -> "Writer":
        self.out += _I32.pack(v)
        return self

    def int64(self, v: int) -> "Writer":
        self.out += _I64.pack(v)
        return self

    def string(self, v: str | None) -> "Writer":
        if v is None:
            return self.int16(-1)
        data = v.encode("utf-8")
        if len(data) > MAX_STRING_BYTES:
            raise ValueError(f"string longer than {MAX_STRING_BYTES} bytes")
        self.int16(len(data))
        self.out += data
        return self

    def bytes_(self, v: bytes | None) -> "Writer":
        if v is None:
            return self.int32(-1)
        self.int32(len(v))
        self.out += v
        return self

    def done(self) -> bytes:
        return bytes(self.out)


class Reader:
    def __init__(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ProtocolDecodeError(f"expected bytes, got {type(data).__name__}")
        self.data = bytes(data)
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolDecodeError(f"truncated at byte {self.pos}: wanted {n} more bytes")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int8(self) -> int:
        return _I8.unpack(self._take(1))[0]

    def int16(self) -> int:
        return _I16.unpack(self._take(2))[0]

    def int32(self) -> int:
        return _I32.unpack(self._take(4))[0]

    def int64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def string(self) -> str | None:
        n = self.int16()
        if n == -1:
            return None
        if n < 0:
            raise ProtocolDecodeError(f"negative string length {n} at byte {self.pos - 2}")
        try:
            return self._take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolDecodeError(f"string at byte {self.pos - n} is not UTF-8") from None

    def required_string(self) -> str:
        s = self.string()
        if s is None:
            raise ProtocolDecodeError(f"null where a string is required (byte {self.pos - 2})")
        return s

    def bytes_(self) -> bytes | None:
        n = self.int32()
        if n == -1:
            return None
        if n < 0:
            raise ProtocolDecodeError(f"negative bytes length {n} at byte {self.pos - 4}")
        return self._take(n)

    def count(self) -> int:
        n = self.int32()
        if n == -1:
            return 0
        if not 0 <= n <= MAX_ARRAY_ITEMS:
            raise ProtocolDecodeError(f"array of {n} items at byte {self.pos - 4} (limit {MAX_ARRAY_ITEMS})")
        return n

    def remaining(self) -> int:
        return len(self.data) - self.pos
