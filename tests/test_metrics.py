"""Metric outputs: the TensorBoard event file decodes to what was written; JSON lines; the bar."""
import io
import json
import struct

from enas_jax.io import metrics


def _varint(buf, pos):
  value = shift = 0
  while True:
    byte = buf[pos]
    value |= (byte & 0x7F) << shift
    pos += 1
    shift += 7
    if not byte & 0x80:
      return value, pos


def _decode(buf):
  """A plain protobuf wire decoder: {field: [values]} (bytes for length-delimited fields)."""
  out, pos = {}, 0
  while pos < len(buf):
    key, pos = _varint(buf, pos)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 1:
      value, pos = struct.unpack("<d", buf[pos:pos + 8])[0], pos + 8
    elif wire == 5:
      value, pos = struct.unpack("<f", buf[pos:pos + 4])[0], pos + 4
    else:
      length, pos = _varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    out.setdefault(number, []).append(value)
  return out


def test_crc32c_standard_check_value():
  assert metrics.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
  assert metrics.crc32c(b"") == 0


def test_event_file_round_trip(tmp_path):
  writer = metrics.EventFileWriter(str(tmp_path))
  writer.scalars(7, {"shared/loss": 2.5, "controller/reward": -1.25})
  writer.image(9, "cell", b"\x89PNGdata", height=3, width=4)
  writer.close()
  records = metrics.read_records(writer.path)  # checks both CRCs of every record
  assert len(records) == 3
  first = _decode(records[0])
  assert first[3] == [b"brain.Event:2"]
  scalars = _decode(records[1])
  assert scalars[2] == [7]
  values = [_decode(v) for v in _decode(scalars[5][0])[1]]
  assert [(v[1][0], v[2][0]) for v in values] == [(b"shared/loss", 2.5),
                                                   (b"controller/reward", -1.25)]
  image_event = _decode(records[2])
  value = _decode(_decode(image_event[5][0])[1][0])
  image = _decode(value[4][0])
  assert value[1] == [b"cell"] and image[1] == [3] and image[2] == [4] and image[4] == [
      b"\x89PNGdata"]


def test_corrupt_record_is_detected(tmp_path):
  writer = metrics.EventFileWriter(str(tmp_path))
  writer.scalars(1, {"a": 1.0})
  writer.close()
  data = bytearray(open(writer.path, "rb").read())
  data[-6] ^= 0xFF
  open(writer.path, "wb").write(bytes(data))
  try:
    metrics.read_records(writer.path)
  except ValueError as err:
    assert "CRC" in str(err)
  else:
    raise AssertionError("corruption not detected")


def test_metrics_log_writes_json_lines_and_events(tmp_path):
  log = metrics.MetricsLog(str(tmp_path))
  log.write("shared", 3, {"loss": 1.5, "arch": "0 1 2"})
  log.write("shared", 4, {"loss": float("nan")})
  log.close()
  rows = metrics.read_metrics(str(tmp_path / "metrics.jsonl"))
  assert rows == [{"phase": "shared", "step": 3, "loss": 1.5, "arch": "0 1 2"},
                  {"phase": "shared", "step": 4, "loss": "nan"}]
  json.dumps(rows)
  event_files = list((tmp_path / "tb").iterdir())
  assert len(event_files) == 1
  assert len(metrics.read_records(str(event_files[0]))) == 3


def test_progress_is_silent_off_a_terminal():
  stream = io.StringIO()  # not a TTY
  bar = metrics.Progress(stream)
  bar.show("epoch 1", 3, 10, {"loss": 2.0}, force=True)
  bar.clear()
  assert stream.getvalue() == ""
  forced = metrics.Progress(stream, enabled=True)
  forced.show("epoch 1", 5, 10, {"loss": 2.0}, force=True)
  assert "epoch 1" in stream.getvalue() and "5/10" in stream.getvalue()
