"""Learn2Reg task files beside the NIfTI volumes: the official validation pairs and NLST keypoints.

A Learn2Reg task root holds ``imagesTr/``, ``labelsTr/`` (and for NLST
``masksTr/`` and ``keypointsTr/``) plus ``<TASK>_dataset.json``. The volumes
are read by :func:`jaxmed.io.nifti.load_learn2reg_subjects`.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Sequence

import numpy as np

from jaxmed.io.nifti import NiftiError


def learn2reg_val_pairs(root: str) -> list[tuple[str, str]] | None:
  """The official validation pairs ``[(moving, fixed), ...]`` from ``root/*_dataset.json``, or ``None``.

  Learn2Reg ships a ``<TASK>_dataset.json`` whose ``"registration_val"`` list
  holds ``{"fixed": "./imagesTr/<name>.nii.gz", "moving": ...}`` entries;
  the names returned are the file stems (``<name>``).
  """
  files = sorted(glob.glob(os.path.join(root, "*_dataset.json")))
  if not files:
    return None
  with open(files[0]) as f:
    meta = json.load(f)
  entries = meta.get("registration_val")
  if entries is None:
    return None
  stem = lambda p: os.path.basename(p).split(".nii")[0]  # noqa: E731
  try:
    return [(stem(e["moving"]), stem(e["fixed"])) for e in entries]
  except (KeyError, TypeError) as e:
    raise NiftiError(f"{files[0]}: field 'registration_val' must be a list of {{'fixed': path, 'moving': path}} "
                     f"entries ({e!r})") from e


def load_learn2reg_keypoints(root: str, names: Sequence[str], *, ndim: int = 3) -> np.ndarray | None:
  """Keypoints ``root/keypointsTr/<name>.csv`` (one voxel coordinate per row, NLST), or ``None`` if absent.

  Returns ``[N, P, ndim]`` float32 with ``P`` the largest count; shorter lists
  are padded with NaN rows (which :func:`jaxmed.registration.keypoint_tre`
  skips). Rows of corresponding subjects correspond (NLST's keypoints are
  paired between the two scans of a patient).
  """
  paths = [os.path.join(root, "keypointsTr", f"{name}.csv") for name in names]
  if not all(os.path.exists(p) for p in paths):
    return None
  points = []
  for p in paths:
    try:
      rows = np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as e:
      raise NiftiError(f"{p}: keypoints must be rows of {ndim} comma-separated numbers ({e})") from e
    if rows.shape[1] != ndim or not np.all(np.isfinite(rows)):
      raise NiftiError(f"{p}: expected rows of {ndim} finite voxel coordinates, got shape {rows.shape}")
    points.append(rows)
  out = np.full((len(points), max(len(r) for r in points), ndim), np.nan, np.float32)
  for i, r in enumerate(points):
    out[i, :len(r)] = r
  return out
