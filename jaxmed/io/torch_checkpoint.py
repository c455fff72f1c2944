"""Read a PyTorch checkpoint (``torch.save``'s zip format) into NumPy arrays without importing torch.

The file is a zip holding ``<name>/data.pkl`` (the pickled object) and one
raw little-endian buffer per storage under ``<name>/data/<key>``. The pickle
refers to storages through ``persistent_load`` and rebuilds tensors with
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``.
:class:`_Unpickler` resolves only those names (plus ``OrderedDict``) to
NumPy; any other class in the file (a Lightning checkpoint's hyper-parameters
or optimizer state) becomes an inert :class:`Opaque` placeholder, so loading
runs no code from the file.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile

import numpy as np

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
                  "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                  "BoolStorage": np.bool_}


class Opaque:
  """Stands in for a class the reader does not rebuild; keeps its arguments."""

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs = args, kwargs

  def __setstate__(self, state):
    self.state = state


class _StorageType:
  def __init__(self, name):
    self.name = name


def _rebuild_tensor(storage, offset, size, stride, *_):
  if not size:
    return storage[offset].copy()
  item = storage.itemsize
  return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                         strides=tuple(s * item for s in stride)).copy()


def _rebuild_parameter(data, *_):
  return data


class _Unpickler(pickle.Unpickler):
  def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: str):
    super().__init__(file)
    self.archive, self.prefix, self.path = archive, prefix, path

  def find_class(self, module, name):
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in STORAGE_DTYPES:
      return _StorageType(name)
    return Opaque

  def persistent_load(self, pid):
    kind, storage_type, key, _location, numel = pid[:5]
    if kind != "storage" or not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"{self.path}: unsupported storage reference {pid!r}")
    raw = self.archive.read(f"{self.prefix}data/{key}")
    dtype = STORAGE_DTYPES[storage_type.name]
    if dtype == "bfloat16":   # the high half of a float32
      return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)[:numel]
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))[:numel]


def load_torch_checkpoint(path: str):
  """The object ``torch.save`` wrote to ``path``, with every tensor as a NumPy array (bfloat16 as float32)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such checkpoint")
  if not zipfile.is_zipfile(path):
    raise ValueError(f"{path}: not a PyTorch zip checkpoint (torch.save's default format since torch 1.6)")
  with zipfile.ZipFile(path) as archive:
    pkl = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if not pkl:
      raise ValueError(f"{path}: the zip has no data.pkl, so it is not a torch.save checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    with archive.open(pkl[0]) as f:
      return _Unpickler(f, archive, prefix, path).load()


def tensor_getter(state, path: str, what: str):
  """``get(key, shape=None)`` over a state dict: ``state[key]`` as float32, or one error naming ``path``, ``what``
  (the model) and the key, or the shape found and expected."""
  def get(key: str, shape=None) -> np.ndarray:
    if key not in state:
      raise KeyError(f"{path}: {what} tensor {key!r} is missing")
    a = np.asarray(state[key], np.float32)
    if shape is not None and a.shape != tuple(shape):
      raise ValueError(f"{path}: {what} tensor {key!r} has shape {a.shape}; expected {tuple(shape)}")
    return a
  return get
