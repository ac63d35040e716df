"""``python -m core_log dump-log PATH``: print a segment's batches and records.

Modelled on Kafka's ``kafka-dump-log.sh --print-data-log``: one line per batch
(base offset, count, producer id/epoch/base sequence, leader epoch, CRC valid or
not), then one ``| offset: …`` line per record. A corrupt file is printed up to
the last sound batch, followed by where and why the dump stopped.

PATH is a ``.log`` segment file or a partition directory (every segment in it).
"""

from __future__ import annotations

import os
from typing import Callable, TextIO

from core_log.errors import CorruptRecordError, StorageError
from core_log.records import Compression, Record, RecordBatch, parse_control_record
from core_log.segment import LOG_SUFFIX, parse_segment_file_name
from core_log.storage import FileStorage

#: Bytes of a key or value shown before "…".
PREVIEW_BYTES = 40


def _preview(data: bytes | None) -> str:
    if data is None:
        return "null"
    shown = data[:PREVIEW_BYTES]
    try:
        text = shown.decode("utf-8")
        if not text.isprintable():
            raise ValueError
        text = repr(text)[1:-1]
    except ValueError:
        text = "0x" + shown.hex()
    return text + ("…" if len(data) > PREVIEW_BYTES else "")


def _batch_line(batch: RecordBatch, position: int, crc_ok: bool) -> str:
    horizon = batch.delete_horizon_ms
    return (
        f"baseOffset: {batch.base_offset} lastOffset: {batch.last_offset} count: {batch.record_count} "
        f"baseSequence: {batch.base_sequence} lastSequence: {batch.last_sequence} "
        f"producerId: {batch.producer_id} producerEpoch: {batch.producer_epoch} "
        f"partitionLeaderEpoch: {batch.partition_leader_epoch} "
        f"isTransactional: {str(batch.is_transactional).lower()} isControl: {str(batch.is_control).lower()} "
        f"deleteHorizonMs: {horizon if horizon is not None else 'none'} position: {position} "
        f"{'LogAppendTime' if batch.timestamp_type else 'CreateTime'}: {batch.max_timestamp_ms} "
        f"size: {batch.size_bytes} magic: {batch.magic} "
        f"compresscodec: {Compression(batch.compression).name.lower() if batch.compression <= 4 else batch.compression} "
        f"crc: {batch.crc} isvalid: {str(crc_ok).lower()}"
    )


DECODERS = ("offsets", "transaction-log")


def decoded_text(decoder: str | None, rec: Record) -> str:
    """Kafka's ``--offsets-decoder`` / ``--transaction-log-decoder``: the record in words."""
    if decoder is None:
        return ""
    try:
        if decoder == "offsets":
            from core_log.offsets import decode_record
            return f" decoded: {decode_record(rec.key, rec.value).describe()}"
        from core_log.txn import decode_txn_record
        txn_id, meta = decode_txn_record(rec.key, rec.value)
        if meta is None:
            return f" decoded: transactional id {txn_id} deleted (tombstone)"
        parts = ",".join(sorted(f"{tp.topic}-{tp.partition}" for tp in meta.partitions))
        return (f" decoded: transactional id {txn_id} producer id {meta.producer_id} epoch {meta.producer_epoch} "
                f"state {meta.state_name} partitions [{parts}] timeout {meta.timeout_ms} ms")
    except ValueError as exc:  # ProtocolDecodeError is a ValueError
        return f" decoded: (not a {decoder} record: {exc})"


def decoder_for(path: str) -> str | None:
    """The decoder a path of an internal topic needs (its partition directory names the topic)."""
    name = os.path.basename(os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else os.path.abspath(path))
    if name.startswith("__consumer_offsets-"):
        return "offsets"
    if name.startswith("__transaction_state-"):
        return "transaction-log"
    return None


def _record_line(batch: RecordBatch, rec: Record, decoder: str | None = None) -> str:
    if batch.is_control:
        try:
            ctype, epoch = parse_control_record(rec)
            return f"| offset: {rec.offset} CreateTime: {rec.timestamp_ms} endTxnMarker: {ctype.name} coordinatorEpoch: {epoch}"
        except CorruptRecordError:
            pass
    sequence = batch.base_sequence + (rec.offset - batch.base_offset) if batch.base_sequence >= 0 else -1
    headers = ", ".join(f"{k if k.isprintable() else repr(k)[1:-1]}={_preview(v)}" for k, v in rec.headers)
    return (
        f"| offset: {rec.offset} CreateTime: {rec.timestamp_ms} "
        f"keySize: {-1 if rec.key is None else len(rec.key)} valueSize: {-1 if rec.value is None else len(rec.value)} "
        f"sequence: {sequence} headers: [{headers}] key: {_preview(rec.key)} payload: {_preview(rec.value)}"
        + decoded_text(decoder, rec)
    )


def dump_segment(path: str, out: TextIO, *, print_records: bool = True, decoder: str | None = None) -> bool:
    """Dump one segment file to ``out``; return False if it is corrupt."""
    storage = FileStorage()
    f = storage.open_read_only(path)
    size = f.size()
    write: Callable[[str], object] = lambda line: out.write(line + "\n")
    write(f"Dumping {path}")
    base = parse_segment_file_name(os.path.basename(path))
    write(f"Log starting offset: {base if base is not None else 'unknown (not a segment file name)'}")
    position = 0
    batches = 0
    ok = True
    data = f.read(0, size)
    f.close()
    from core_log.records import read_batch_header

    while position < size:
        try:
            batch = read_batch_header(data, position)
        except CorruptRecordError as exc:
            write(f"Stopped at byte {exc.position} of {size}: {exc.reason}. "
                  f"{batches} valid batch(es) before it; {size - position} byte(s) not dumped.")
            return False
        crc_ok = batch.crc_is_valid()
        ok &= crc_ok
        write(_batch_line(batch, position, crc_ok))
        if print_records:
            try:
                for rec in batch.records():
                    write(_record_line(batch, rec, decoder))
            except CorruptRecordError as exc:
                write(f"| records unreadable: {exc.reason}")
                ok = False
        position += batch.size_bytes
        batches += 1
    write(f"End of segment: {batches} batch(es), {size} bytes{'' if ok else ' (with errors above)'}.")
    return ok


def dump_path(path: str, out: TextIO, *, print_records: bool = True, decoder: str | None = None) -> bool:
    """Dump a segment file, or every segment of a partition directory, in offset order.

    ``decoder`` ("offsets" or "transaction-log") adds each record of an internal
    topic in words; by default it is chosen from the partition directory's name.
    """
    if decoder is None:
        decoder = decoder_for(path)
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if parse_segment_file_name(n) is not None)
        if not names:
            raise StorageError(f"no {LOG_SUFFIX} segment files in {path}")
        ok = True
        for name in names:
            ok &= dump_segment(os.path.join(path, name), out, print_records=print_records, decoder=decoder)
        return ok
    if not os.path.isfile(path):
        raise StorageError(f"no such file or directory: {path}")
    return dump_segment(path, out, print_records=print_records, decoder=decoder)
