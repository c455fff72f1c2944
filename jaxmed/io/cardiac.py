"""Cardiac cine and tabular readers for ViTa: the official processed ``.npz`` layout, NIfTI 4-D cine, and CSV
tables read against a column schema. Each raises :class:`CardiacDataError` naming the file and the field."""

from __future__ import annotations

import csv
import os
from typing import Mapping, Sequence

import numpy as np

from jaxmed.io.nifti import NiftiError, load_nifti


class CardiacDataError(ValueError):
  """A cine file or a tabular file does not match what ViTa expects."""


def load_vita_npz(path: str) -> dict[str, np.ndarray]:
  """Reads one subject of the official processed layout: ``sax``, ``lax``, ``seg_sax``, ``seg_lax`` ``[H, W, S, T]``.

  Returns ``cine [S_lax + S_sax, T, H, W]`` float32 (long-axis views first,
  as ViTa stacks them), ``seg`` int32 of the same shape, ``num_lax``.
  """
  if not os.path.exists(path):
    raise CardiacDataError(f"{path}: file not found")
  try:
    data = np.load(path)
  except Exception as e:  # a truncated or non-npz file
    raise CardiacDataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
  arrays = {}
  for key in ("sax", "lax", "seg_sax", "seg_lax"):
    if key not in data:
      raise CardiacDataError(f"{path}: field '{key}' is missing; expected sax, lax, seg_sax, seg_lax [H, W, S, T]")
    arrays[key] = np.asarray(data[key])
    if arrays[key].ndim != 4:
      raise CardiacDataError(f"{path}: field '{key}' has shape {arrays[key].shape}; expected [H, W, S, T]")
  for img, seg in (("sax", "seg_sax"), ("lax", "seg_lax")):
    if arrays[img].shape != arrays[seg].shape:
      raise CardiacDataError(f"{path}: field '{seg}' has shape {arrays[seg].shape}, '{img}' {arrays[img].shape}; "
                             "expected equal")
  sax, lax = arrays["sax"], arrays["lax"]
  if sax.shape[:2] != lax.shape[:2] or sax.shape[3] != lax.shape[3]:
    raise CardiacDataError(f"{path}: fields 'sax' {sax.shape} and 'lax' {lax.shape} differ in H, W or T; expected "
                           "the same in-plane size and frames")
  to_stdhw = lambda a: np.transpose(a, (2, 3, 0, 1))  # noqa: E731  [H, W, S, T] -> [S, T, H, W]
  cine = np.concatenate([to_stdhw(lax), to_stdhw(sax)]).astype(np.float32)
  seg = np.concatenate([to_stdhw(arrays["seg_lax"]), to_stdhw(arrays["seg_sax"])]).astype(np.int32)
  return {"cine": cine, "seg": seg, "num_lax": lax.shape[2]}


def load_cine_nifti(path: str) -> np.ndarray:
  """A 4-D cine NIfTI as ``[H, W, S, T]`` float32 (SAX stacks as UK Biobank ships them)."""
  try:
    data, _, _ = load_nifti(path, ndim=4)
  except NiftiError as e:
    raise CardiacDataError(str(e)) from e
  return data.astype(np.float32)


MISSING = ("", "na", "nan", "n/a", "null")


def load_tabular_csv(path: str, numerical: Sequence[str], binary: Sequence[str],
                     categorical: Mapping[str, Sequence[str]], id_column: str = "eid",
                     ranges: Mapping[str, tuple[float, float]] | None = None) -> dict:
  """Reads a CSV against a schema; empty cells (and ``NA``, ``nan``, ``null``) are missing.

  Numerical values must be finite (``inf`` is an error, never a feature), and
  within ``ranges[column]`` (inclusive) where the schema gives one: a sentinel
  such as ``-999`` for "not measured" is then caught instead of being learned
  from. Code missing values as empty cells.

  Args:
    numerical, binary: column names (binary values ``0``/``1``).
    categorical: ``{column: categories}``; a value outside its list is an error.
    id_column: the subject id column.
    ranges: ``{numerical column: (low, high)}``, the plausible range of a column.

  Returns:
    ``ids``, ``numerical [N, Fn]`` (NaN missing), ``binary [N, Fb]`` (NaN
    missing), ``categorical [N, Fc]`` (index, -1 missing).
  """
  if not os.path.exists(path):
    raise CardiacDataError(f"{path}: file not found")
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    for col in [id_column, *numerical, *binary, *categorical]:
      if col not in header:
        raise CardiacDataError(f"{path}: column '{col}' is missing; the schema expects {id_column}, "
                               f"{list(numerical)}, {list(binary)}, {list(categorical)}")
    rows = list(reader)
  ranges = dict(ranges or {})
  for col in ranges:
    if col not in numerical:
      raise ValueError(f"load_tabular_csv: ranges names {col!r}, which is not a numerical column {list(numerical)}")
  num = np.full((len(rows), len(numerical)), np.nan, np.float32)
  bin_ = np.full((len(rows), len(binary)), np.nan, np.float32)
  cat = np.full((len(rows), len(categorical)), -1, np.int32)
  for i, row in enumerate(rows):
    where = f"{path}: row {i + 2}"
    for j, col in enumerate(numerical):
      if row[col].strip().lower() not in MISSING:
        try:
          value = float(row[col])
        except ValueError:
          raise CardiacDataError(f"{where}, column '{col}': {row[col]!r} is not a number") from None
        if not np.isfinite(value):
          raise CardiacDataError(f"{where}, column '{col}': {row[col]!r}; expected a finite number (leave the "
                                 "cell empty for a missing value)")
        if col in ranges and not ranges[col][0] <= value <= ranges[col][1]:
          lo, hi = ranges[col]
          raise CardiacDataError(f"{where}, column '{col}': {value:g} is outside the schema's range [{lo:g}, {hi:g}]"
                                 " (a sentinel for a missing value? leave the cell empty)")
        num[i, j] = value
    for j, col in enumerate(binary):
      v = row[col].strip()
      if v:
        if v not in ("0", "1", "0.0", "1.0"):
          raise CardiacDataError(f"{where}, column '{col}': {v!r}; expected 0 or 1")
        bin_[i, j] = float(v)
    for j, (col, cats) in enumerate(categorical.items()):
      v = row[col].strip()
      if v:
        if v not in cats:
          raise CardiacDataError(f"{where}, column '{col}': {v!r}; expected one of {list(cats)}")
        cat[i, j] = list(cats).index(v)
  return {"ids": [r[id_column] for r in rows], "numerical": num, "binary": bin_, "categorical": cat}
