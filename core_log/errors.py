"""Every error the storage layer of ``core_log`` raises, in one place.

Each error says what went wrong and what a caller should do about it. Errors that
Kafka also has carry Kafka's name in ``kafka_name`` so that later layers (the
wire protocol, the UI's explanations) can speak Kafka's vocabulary.
"""

from __future__ import annotations


class CoreLogError(Exception):
    """Base of every error raised by ``core_log``."""

    kafka_name = "UNKNOWN_SERVER_ERROR"


class CorruptRecordError(CoreLogError):
    """Bytes that should hold record batches do not.

    Raised by every decoder in :mod:`core_log.records` for any malformed input —
    truncated, bad CRC, impossible lengths, bad varints, bad compression — and by
    nothing else. ``position`` is the byte offset (within the buffer handed to the
    decoder) at which the problem was found; ``reason`` says what was wrong.
    Callers that recover a log truncate at ``position`` of the first bad batch.
    """

    kafka_name = "CORRUPT_MESSAGE"

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"corrupt record data at byte {position}: {reason}")
        self.position = position
        self.reason = reason


class UnsupportedCompressionError(CorruptRecordError):
    """A batch uses a codec this engine does not implement (snappy, lz4, zstd).

    A subclass of :class:`CorruptRecordError` so that decoders keep their
    one-error contract; the reason names the codec.
    """

    kafka_name = "UNSUPPORTED_COMPRESSION_TYPE"


class InvalidRecordError(CoreLogError):
    """A well-formed batch that this log refuses (e.g. no key on a compacted topic).

    Nothing was appended; the caller should fix the batch and retry.
    """

    kafka_name = "INVALID_RECORD"


class RecordBatchTooLargeError(CoreLogError):
    """A batch is larger than the log's ``max_batch_bytes`` (Kafka's message.max.bytes)."""

    kafka_name = "MESSAGE_TOO_LARGE"


class OffsetOutOfRangeError(CoreLogError):
    """A read asked for an offset outside [log_start_offset, log_end_offset].

    A consumer that gets this applies its ``auto.offset.reset`` policy.
    """

    kafka_name = "OFFSET_OUT_OF_RANGE"

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log's range "
            f"[{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class LogClosedError(CoreLogError):
    """The log (or its storage) was closed or crashed; reopen it to continue."""

    kafka_name = "KAFKA_STORAGE_ERROR"


class StorageError(CoreLogError):
    """The storage layer could not complete an operation (missing file, bad path)."""

    kafka_name = "KAFKA_STORAGE_ERROR"


class ConfigError(CoreLogError, ValueError):
    """A configuration value is missing, of the wrong type or out of its named range."""

    kafka_name = "INVALID_CONFIG"


def require_int(name: str, value: object, low: int, high: int) -> None:
    """Raise ConfigError unless ``value`` is a whole number (not a bool) in [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
