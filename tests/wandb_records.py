"""Read an offline W&B run's records (``run-<id>.wandb``): what ``wandb sync`` would upload.

wandb >= 0.2x writes the file from its Go core and ships no Python reader, so the tests read
it here: a 7-byte header (``:W&B``, magic ``0xBEE1``, version), then LevelDB-log records
(4-byte CRC, 2-byte little-endian length, 1-byte type: 1 full, 2 first, 3 middle, 4 last) in
32 KiB blocks, each payload a ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

_BLOCK = 32768
_HEADER = 7


def _payloads(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (no ':W&B' header)")
    pos, parts = _HEADER, []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0 and length == 0:
            pos += 7
            continue
        if pos + 7 + length > len(data):
            raise ValueError(f"record at byte {pos} cut short (the writer is still appending)")
        chunk = data[pos + 7: pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            parts = [chunk]
        elif kind == 3:
            parts.append(chunk)
        elif kind == 4:
            parts.append(chunk)
            yield b"".join(parts)
            parts = []
        else:
            raise ValueError(f"bad record type {kind} at byte {pos}")


def read_run(run_file: Path, wait_s: float = 30.0) -> dict:
    """``{"history": [ {key: value} ... ], "summary": {key: value}, "config": {key: value}}`` of a run file.

    W&B's writer process may still be appending when the run has finished on our side (seen on a loaded
    machine): the file is read again until it holds the run's ``exit`` record, for at most ``wait_s``. A
    record caught half-written (cut short, or a protobuf that does not parse yet) counts as "not yet";
    past ``wait_s`` the error is raised.
    """
    import time

    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + wait_s
    while True:
        try:
            out = _read_records(Path(run_file), pb)
        except (ValueError, DecodeError):  # a record still being written
            if time.monotonic() > deadline:
                raise
            out = {"_complete": False}
        if out.pop("_complete") or time.monotonic() > deadline:
            return out
        time.sleep(0.25)


def _read_records(run_file: Path, pb) -> dict:
    out: dict = {"history": [], "summary": {}, "config": {}, "_complete": False}
    for payload in _payloads(run_file.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                   for i in rec.history.item})
        elif kind == "summary":
            for i in rec.summary.update:
                out["summary"][i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                out["config"][i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
        elif kind == "exit":
            out["_complete"] = True
    return out
