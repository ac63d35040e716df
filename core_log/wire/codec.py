"""Kafka protocol frames ↔ kio's typed messages: framing, request headers, a version-agnostic builder.

A Kafka frame is a 4-byte big-endian size, then a request header and a body
whose layout depends on (api key, version). kio has a frozen dataclass for every
one of them; this module finds the right class, reads a request, and writes a
response. Handlers build responses with :func:`build` from plain dicts, so one
handler serves every version: fields a version lacks are dropped, fields it has
but the dict leaves out take kio's default, and a field with no default that is
left out is an error (never a silent zero — a zero ``preferred_read_replica``
makes librdkafka skip records).

Contract: :func:`read_request` raises :class:`FrameError` for anything it cannot
decode (the connection then closes; other connections are untouched).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import types
import typing
from functools import lru_cache
from typing import Any

import kio.index
import kio.serial
from kio.schema.errors import ErrorCode
from kio.static.constants import EntityType

#: The largest request frame accepted, in bytes (Kafka's socket.request.max.bytes default is 100 MiB;
#: a lab needs far less, and a bigger claimed size is refused before it is read).
MAX_FRAME_BYTES = 8 * 1024 * 1024
SIZE = struct.Struct(">i")
HEADER_PREFIX = struct.Struct(">hhi")  # api key, api version, correlation id: the same in every header version


class FrameError(ValueError):
    """A frame that cannot be decoded; ``correlation_id`` is known when the header could be read."""

    def __init__(self, message: str, correlation_id: int | None = None) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id


@lru_cache(maxsize=None)
def message_class(api_key: int, version: int, kind: EntityType) -> type:
    """kio's request or response class for (api key, version); LookupError if kio has none."""
    try:
        module = kio.index.load_payload_module(api_key, version, kind)
    except (ValueError, KeyError, ModuleNotFoundError) as exc:
        raise LookupError(f"no schema for api key {api_key} v{version}") from exc
    for value in vars(module).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and \
                getattr(value, "__api_key__", None) == api_key and getattr(value, "__type__", None) == kind:
            return value
    raise LookupError(f"no {kind.name} class for api key {api_key} v{version}")


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api key, api version, correlation id) of a request frame body (without its size prefix)."""
    if len(frame) < HEADER_PREFIX.size:
        raise FrameError(f"a request of {len(frame)} bytes is shorter than a request header")
    return HEADER_PREFIX.unpack_from(frame)


def read_request(frame: bytes, version_range: tuple[int, int] | None) -> tuple[Any, Any]:
    """Decode a request frame body into (header, request); ``version_range`` is what we advertise for it."""
    api_key, version, correlation_id = peek_header(frame)
    if version_range is None or not version_range[0] <= version <= version_range[1]:
        raise FrameError(f"api key {api_key} v{version} is not supported", correlation_id)
    cls = message_class(api_key, version, EntityType.request)
    try:
        header, used = kio.serial.entity_reader(cls.__header_schema__)(frame, 0)
        request, body_used = kio.serial.entity_reader(cls)(frame, used)
    except Exception as exc:  # kio's native reader raises several types for bad bytes
        raise FrameError(f"malformed {cls.__name__} v{version}: {exc}", correlation_id) from None
    if used + body_used != len(frame):
        raise FrameError(f"{cls.__name__} v{version} has {len(frame) - used - body_used} trailing bytes",
                         correlation_id)
    return header, request


def write_response(api_key: int, version: int, correlation_id: int, body: dict[str, Any]) -> bytes:
    """A whole response frame (size prefix included) for ``body`` (a dict, see :func:`build`)."""
    return write_response_as(message_class(api_key, version, EntityType.response), correlation_id, body)


def write_response_as(cls: type, correlation_id: int, body: dict[str, Any]) -> bytes:
    """Like :func:`write_response` for an explicit class (ApiVersions' v0 reply to a version it does not know)."""
    buf = io.BytesIO()
    header_cls = cls.__header_schema__
    kio.serial.entity_writer(header_cls)(buf, build(header_cls, {"correlation_id": correlation_id}))
    kio.serial.entity_writer(cls)(buf, build(cls, body))
    data = buf.getvalue()
    return SIZE.pack(len(data)) + data


@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[tuple[str, Any, bool, Any], ...]:
    """(name, type, has default, default) of a kio dataclass's fields, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out.append((f.name, hints[f.name], True, f.default))
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out.append((f.name, hints[f.name], True, f.default_factory()))  # type: ignore[misc]
        else:
            out.append((f.name, hints[f.name], False, None))
    return tuple(out)


def _element_class(hint: Any) -> type | None:
    """The dataclass inside ``tuple[X, ...]`` or ``tuple[X, ...] | None`` (a nested array), else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def build(cls: type, values: dict[str, Any]) -> Any:
    """An instance of kio class ``cls`` from a dict; nested arrays are lists of dicts.

    Keys the class does not have are ignored (an older or newer version lacks
    them); missing keys take kio's default, and a missing key with no default
    raises TypeError naming it.
    """
    kwargs: dict[str, Any] = {}
    for name, hint, has_default, default in _fields(cls):
        if name in values:
            value = values[name]
            element = _element_class(hint)
            if element is not None and value is not None:
                value = tuple(v if dataclasses.is_dataclass(v) else build(element, v) for v in value)
            elif isinstance(value, list):
                value = tuple(value)
            elif name.endswith("error_code") and not isinstance(value, ErrorCode):
                value = error_code(value)
            kwargs[name] = value
        elif not has_default:
            raise TypeError(f"{cls.__qualname__}.{name} has no default; the handler must give it")
    return cls(**kwargs)


def error_code(name: str | int | ErrorCode) -> ErrorCode:
    """kio's ErrorCode for an engine error name (``"NOT_LEADER_OR_FOLLOWER"``) or a number."""
    if isinstance(name, ErrorCode):
        return name
    if isinstance(name, int):
        return ErrorCode(name)
    if not name:
        return ErrorCode.none
    try:
        return ErrorCode[name.lower()]
    except KeyError:
        return ErrorCode.unknown_server_error


__all__ = ["FrameError", "MAX_FRAME_BYTES", "SIZE", "build", "error_code", "message_class",
           "peek_header", "read_request", "write_response", "write_response_as"]
