"""Writing a reconstruction: the volume as NIfTI on a target grid, the motion table and the slice weights."""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import jax.numpy as jnp
import nibabel as nib
import numpy as np

from jaxmed.svr.reconstruct import SVRModel, sample_volume
from jaxmed.svr.slices import pixel_counts


def target_grid(bbox: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
  """An isotropic grid over ``bbox [2, 3]``: world points ``[X, Y, Z, 3]`` and its NIfTI affine."""
  bbox = np.asarray(bbox, np.float64)
  shape = np.maximum(np.round((bbox[1] - bbox[0]) / spacing).astype(int) + 1, 1)
  affine = np.diag([spacing, spacing, spacing, 1.0])
  affine[:3, 3] = bbox[0]
  ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
  return ijk * spacing + bbox[0], affine


def reconstruct_volume(model: SVRModel, params: dict[str, Any], sl: dict[str, Any], spacing: float,
                       path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Samples the fitted INR on an isotropic ``spacing`` mm grid over the slices' box; writes NIfTI to ``path``."""
  points, affine = target_grid(sl["bbox"], spacing)
  volume = sample_volume(model, params, points, sl["bbox"]).astype(np.float32)
  if path:
    nib.save(nib.Nifti1Image(volume, affine), path)
  return volume, affine


def write_motion_table(path: str, motion: np.ndarray, sl: dict[str, Any]) -> None:
  """CSV, one row per slice: stack, slice, rotation (axis-angle, degrees), translation (mm)."""
  motion = np.asarray(motion)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stack", "slice", "rx_deg", "ry_deg", "rz_deg", "angle_deg", "tx_mm", "ty_mm", "tz_mm"])
    for s in range(len(motion)):
      rot = np.degrees(motion[s, :3])
      w.writerow([int(sl["stack"][s]), int(sl["index"][s]), *np.round(rot, 4), round(float(np.linalg.norm(rot)), 4),
                  *np.round(motion[s, 3:], 4)])


def slice_weights(params: dict[str, Any], sl: dict[str, Any]) -> dict[str, list]:
  """Per-slice learned sigma, the weight ``1 / sigma^2`` normalised to mean 1 over slices with pixels, scale,
  and sigma on the volume's scale (``sigma / scale``, the outlier score;
  :func:`~jaxmed.svr.metrics.slice_sigma_in_volume_units`).

  Slices without masked pixels get ``None`` (nothing was learned about them).
  """
  sigma = np.exp(np.asarray(params["slice"]["log_sigma"], np.float64))
  scale = np.exp(np.asarray(params["slice"]["log_scale"], np.float64))
  has = pixel_counts(sl) > 0
  w = 1.0 / sigma ** 2
  w = w / w[has].mean()
  pick = lambda a: [float(round(v, 6)) if h else None for v, h in zip(a, has)]  # noqa: E731
  return {"stack": [int(s) for s in sl["stack"]], "slice": [int(i) for i in sl["index"]], "sigma": pick(sigma),
          "weight": pick(w), "scale": pick(scale), "sigma_volume_units": pick(sigma / scale)}


def write_outputs(workdir: str, model: SVRModel, params: dict[str, Any], sl: dict[str, Any], *, spacing: float,
                  prefix: str = "") -> dict[str, str]:
  """``<prefix>recon.nii.gz``, ``<prefix>motion.csv`` and ``<prefix>slice_weights.json`` in ``workdir``."""
  os.makedirs(workdir, exist_ok=True)
  paths = {k: os.path.join(workdir, prefix + name) for k, name in
           (("volume", "recon.nii.gz"), ("motion", "motion.csv"), ("weights", "slice_weights.json"))}
  reconstruct_volume(model, params, sl, spacing, paths["volume"])
  motion = np.asarray(model.slice_motion(params, {k: jnp.asarray(v) for k, v in sl.items()}))
  write_motion_table(paths["motion"], motion, sl)
  with open(paths["weights"], "w") as f:
    json.dump(slice_weights(params, sl), f, indent=1)
  return paths
