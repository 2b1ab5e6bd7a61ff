"""Where a run's figures go: JSON lines, TensorBoard event files and a terminal progress bar.

The TensorBoard writer is self-contained (no TensorFlow): an event file is a sequence of records
`uint64 length | masked crc32c(length) | Event proto | masked crc32c(data)`, and the few protobuf
messages needed (Event, Summary, Summary.Value, Summary.Image) are encoded by hand below.
"""
from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
import time
from typing import Any, Mapping, TextIO

# --- crc32c (Castagnoli), as TFRecord framing requires -------------------------------------------

def _crc32c_table() -> tuple[int, ...]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data
          + struct.pack("<I", masked_crc32c(data)))


# --- protobuf wire format, only what Event needs --------------------------------------------------

def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # negative int64 as two's complement
  out = bytearray()
  while True:
    bits = value & 0x7F
    value >>= 7
    if value:
      out.append(bits | 0x80)
    else:
      out.append(bits)
      return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
  return _varint(number << 3 | 0) + _varint(value)


def _field_double(number: int, value: float) -> bytes:
  return _varint(number << 3 | 1) + struct.pack("<d", value)


def _field_float(number: int, value: float) -> bytes:
  return _varint(number << 3 | 5) + struct.pack("<f", value)


def scalar_value(tag: str, value: float) -> bytes:
  """A Summary.Value with `simple_value`."""
  return _field_bytes(1, tag.encode()) + _field_float(2, value)


def image_value(tag: str, png: bytes, height: int, width: int) -> bytes:
  """A Summary.Value holding a PNG (Summary.Image: height, width, colorspace, encoded)."""
  image = (_field_varint(1, height) + _field_varint(2, width) + _field_varint(3, 4)
           + _field_bytes(4, png))
  return _field_bytes(1, tag.encode()) + _field_bytes(4, image)


def event(wall_time: float, step: int, summary_values: list[bytes] | None = None,
          file_version: str | None = None, session_start: bool = False) -> bytes:
  out = _field_double(1, wall_time) + _field_varint(2, step)
  if file_version is not None:
    out += _field_bytes(3, file_version.encode())
  if session_start:
    out += _field_bytes(6, _field_varint(1, 1))  # SessionLog{status: START}
  if summary_values is not None:
    out += _field_bytes(5, b"".join(_field_bytes(1, v) for v in summary_values))
  return out


class EventFileWriter:
  """Appends TensorBoard events to `events.out.tfevents.<time>.<host>` in `logdir`."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    self.path = os.path.join(logdir, name)
    self._file = open(self.path, "ab")
    self._file.write(tfrecord(event(time.time(), 0, file_version="brain.Event:2")))
    self._file.flush()

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    summary = [scalar_value(tag, float(v)) for tag, v in values.items()]
    self._file.write(tfrecord(event(time.time(), step, summary)))

  def session_start(self, step: int) -> None:
    """A SessionLog START at `step`: TensorBoard drops this run's older events from `step` on
    (the records a resumed run writes again)."""
    self._file.write(tfrecord(event(time.time(), step, session_start=True)))

  def image(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
    self._file.write(tfrecord(event(time.time(), step, [image_value(tag, png, height, width)])))

  def flush(self) -> None:
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def read_records(path: str) -> list[bytes]:
  """The payloads of a TFRecord file, checking both CRCs (for tests and tools)."""
  out = []
  with open(path, "rb") as f:
    data = f.read()
  pos = 0
  while pos < len(data):
    header = data[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
    if crc != masked_crc32c(header):
      raise ValueError(f"{path}: bad length CRC at byte {pos}")
    payload = data[pos + 12:pos + 12 + length]
    (crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
    if crc != masked_crc32c(payload):
      raise ValueError(f"{path}: bad data CRC at byte {pos}")
    out.append(payload)
    pos += 16 + length
  return out


# --- the run's metric log ------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf; keep them visible
  return value


class MetricsLog:
  """Writes each record to `metrics.jsonl` and its numbers to TensorBoard under `tb/`.

  A record is `{"phase": ..., "step": ..., <name>: <number>, ...}`; TensorBoard tags are
  `phase/name`.
  """

  def __init__(self, workdir: str, filename: str = "metrics.jsonl"):
    self.path = os.path.join(workdir, filename)
    self._jsonl = open(self.path, "a")
    self.events = EventFileWriter(os.path.join(workdir, "tb"))

  def write(self, phase: str, step: int, values: Mapping[str, Any]) -> None:
    record = {"phase": phase, "step": int(step)}
    record.update({k: _jsonable(v) for k, v in values.items()})
    self._jsonl.write(json.dumps(record) + "\n")
    numbers = {f"{phase}/{k}": float(v) for k, v in values.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
      self.events.scalars(int(step), numbers)

  def flush(self) -> None:
    self._jsonl.flush()
    self.events.flush()

  def tell(self) -> int:
    """Bytes of `metrics.jsonl` written so far (a checkpoint records it to truncate on resume)."""
    self._jsonl.flush()
    return self._jsonl.tell()

  def close(self) -> None:
    self._jsonl.close()
    self.events.close()


class _NoEvents:
  """`EventFileWriter`'s calls, writing nothing."""

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    del step, values

  def session_start(self, step: int) -> None:
    del step

  def image(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
    del step, tag, png, height, width

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class SilentLog:
  """`MetricsLog`'s calls, writing nothing: the log of a process that writes no files (every
  process but process 0 of a multi-host run; process 0 logs the same figures)."""

  def __init__(self) -> None:
    self.events = _NoEvents()

  def write(self, phase: str, step: int, values: Mapping[str, Any]) -> None:
    del phase, step, values

  def flush(self) -> None:
    pass

  def tell(self) -> int:
    return 0

  def close(self) -> None:
    pass


def read_metrics(path: str) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


# --- progress bar --------------------------------------------------------------------------------

class Progress:
  """A one-line progress bar on a terminal; silent when the stream is not a terminal."""

  def __init__(self, stream: TextIO | None = None, enabled: bool | None = None,
               min_interval_s: float = 0.1):
    self._stream = stream or sys.stderr
    self.enabled = self._stream.isatty() if enabled is None else enabled
    self._min_interval = min_interval_s
    self._last = 0.0
    self._width = 0

  def show(self, label: str, done: int, total: int, figures: Mapping[str, float] | None = None,
           force: bool = False) -> None:
    if not self.enabled:
      return
    now = time.monotonic()
    if not force and now - self._last < self._min_interval:
      return
    self._last = now
    frac = done / total if total else 1.0
    bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
    text = f"{label} [{bar}] {done}/{total}"
    if figures:
      text += "  " + " ".join(f"{k}={v:.4g}" for k, v in figures.items())
    self._stream.write("\r" + text.ljust(self._width))
    self._width = len(text)
    self._stream.flush()

  def clear(self) -> None:
    if self.enabled and self._width:
      self._stream.write("\r" + " " * self._width + "\r")
      self._stream.flush()
      self._width = 0
