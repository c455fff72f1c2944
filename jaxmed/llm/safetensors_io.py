"""Safetensors files read one tensor at a time and written in shards, so host memory holds about one tensor.

A safetensors file is an 8-byte little-endian header length ``N``, ``N``
bytes of JSON (``{name: {"dtype", "shape", "data_offsets": [begin, end]}}``
plus an optional ``"__metadata__"``), then the tensors' bytes, offsets
counted from ``8 + N``. :func:`read_header` parses only the header and
returns a lazy :class:`StoredTensor` per name; a tensor's bytes are read
(plain file reads, no memory map that would keep pages resident) only when
it is converted to an array, e.g. inside ``jax.make_array_from_callback``.

:func:`write_shards` takes ``(name, array)`` pairs one at a time (each one
gathered from the devices just before) and writes files of at most
``max_shard_bytes`` in Hugging Face's layout: ``model.safetensors`` when one
file holds everything, else ``model-0000i-of-0000n.safetensors`` and
``model.safetensors.index.json`` (``metadata.total_size``, ``weight_map``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Iterable

import ml_dtypes
import numpy as np

from jaxmed.core.checkpoint import CheckpointError

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


@dataclasses.dataclass(frozen=True)
class StoredTensor:
  """One tensor of a safetensors file, not yet read: ``np.asarray(t)`` reads its bytes."""
  path: str
  key: str
  dtype: np.dtype
  shape: tuple[int, ...]
  offset: int   # absolute byte offset in the file

  @property
  def nbytes(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

  def read(self) -> np.ndarray:
    count = int(np.prod(self.shape, dtype=np.int64))
    with open(self.path, "rb") as f:
      data = np.fromfile(f, dtype=self.dtype, count=count, offset=self.offset)
    if data.size != count:
      raise CheckpointError(f"{self.path}: tensor {self.key!r} is truncated ({data.size} of {count} values)")
    return data.reshape(self.shape)

  def __array__(self, dtype=None, copy=None):
    a = self.read()
    return a if dtype is None else a.astype(dtype)


def read_header(path: str) -> dict[str, StoredTensor]:
  """``{name: StoredTensor}`` from the header of the safetensors file at ``path`` (no tensor data is read)."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    raw = f.read(8)
    if len(raw) < 8:
      raise CheckpointError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    n = struct.unpack("<Q", raw)[0]
    if n > size - 8:
      raise CheckpointError(f"{path}: header length {n} exceeds the file's {size} bytes")
    try:
      header = json.loads(f.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise CheckpointError(f"{path}: the safetensors header is not valid JSON ({e})") from None
  out = {}
  for key, info in header.items():
    if key == "__metadata__":
      continue
    dtype = DTYPES.get(info.get("dtype"))
    if dtype is None:
      raise CheckpointError(f"{path}: tensor {key!r} has dtype {info.get('dtype')!r}, expected one of {list(DTYPES)}")
    begin, end = info["data_offsets"]
    t = StoredTensor(path, key, np.dtype(dtype), tuple(int(d) for d in info["shape"]), 8 + n + int(begin))
    if end - begin != t.nbytes or 8 + n + end > size:
      raise CheckpointError(f"{path}: tensor {key!r} data_offsets {[begin, end]} do not hold shape {t.shape} "
                            f"{info['dtype']} inside the file")
    out[key] = t
  return out


def write_shards(tensors: Iterable[tuple[str, np.ndarray]], out_dir: str, *, max_shard_bytes: int = 5 * 2 ** 30
                 ) -> list[str]:
  """Writes ``(name, array)`` pairs into safetensors shards of at most ``max_shard_bytes``; returns the files.

  Only one shard's arrays are held at a time (a single tensor larger than
  the limit gets a shard of its own).
  """
  from safetensors.numpy import save_file

  shards: list[list[str]] = []
  weight_map: dict[str, int] = {}
  pending: dict[str, np.ndarray] = {}
  pending_bytes = total = 0

  def flush():
    nonlocal pending, pending_bytes
    if pending:
      save_file(pending, os.path.join(out_dir, f"shard-{len(shards)}.tmp"), metadata={"format": "pt"})
      shards.append(list(pending))
      pending, pending_bytes = {}, 0

  for name, array in tensors:
    array = np.ascontiguousarray(array)
    if pending and pending_bytes + array.nbytes > max_shard_bytes:
      flush()
    pending[name] = array
    pending_bytes += array.nbytes
    total += array.nbytes
    weight_map[name] = len(shards)
  flush()
  n = len(shards)
  names = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
  for i, name in enumerate(names):
    os.replace(os.path.join(out_dir, f"shard-{i}.tmp"), os.path.join(out_dir, name))
  if n > 1:
    with open(os.path.join(out_dir, INDEX_FILE), "w") as f:
      json.dump({"metadata": {"total_size": total}, "weight_map": {k: names[i] for k, i in weight_map.items()}},
                f, indent=2)
  return names
