"""Slices as data: flatten stacks into pixels with per-slice geometry, and the forward acquisition.

:func:`prepare` turns a list of stacks (``image [X, Y, Z]``, ``affine``,
explicit ``thickness`` in mm, optional ``mask``) into one flat set of masked
pixels plus per-slice arrays. :func:`acquire` is the imaging model's geometry
and PSF: for chosen pixels it evaluates a volume function at the PSF points
of each pixel, moved by its slice's motion, and averages them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxmed.svr import geometry
from jaxmed.svr.psf import psf_sigmas


def prepare(stacks: Sequence[dict[str, Any]], *, margin_mm: float | None = None,
            bbox: np.ndarray | None = None, halo_mm: float = 0.0) -> dict[str, np.ndarray]:
  """Flattens stacks into a slice set.

  Args:
    stacks: each ``{"image": [X, Y, Z], "affine": [4, 4], "thickness": mm, "mask": [X, Y, Z] (optional)}``;
      slices run along the third axis.
    margin_mm: padding of the bounding box (default: the largest thickness).
    bbox: ``[2, 3]`` world box to use instead (e.g. a known volume's corner voxel centres).
    halo_mm: also keep the background pixels within this in-plane distance of each slice's mask (MetaSVR's
      background halo): the volume learns the dark surround, which guides the motion at the brain's edge.

  Returns:
    ``values [P]``, ``vox [P, 3]`` (voxel index of each pixel), ``slice [P]`` (global slice index) for the
    masked pixels; per slice ``affine [S, 4, 4]``, ``center [S, 3]``, ``frame [S, 3, 3]`` (unit axes as
    columns), ``sigmas [S, 3]`` (PSF, mm), ``stack [S]``, ``pos [S]`` (index / count in its stack),
    ``index [S]`` (index in its stack); ``bbox [2, 3]`` (world box of the masked pixels + margin);
    ``num_pixels`` (``P``, before any :func:`pad_pixels`), ``num_stacks``.
  """
  values, vox, slice_of, per_slice = [], [], [], {k: [] for k in
                                                   ("affine", "center", "frame", "sigmas", "stack", "pos", "index")}
  world = []
  offset = 0
  for s, st in enumerate(stacks):
    image = np.asarray(st["image"], np.float32)
    if image.ndim != 3:
      raise ValueError(f"stack {s}: image has shape {image.shape}; expected [X, Y, Z] with slices on the last axis")
    thickness = st.get("thickness")
    if thickness is None:
      raise ValueError(f"stack {s}: 'thickness' is missing; pass the slice thickness in mm explicitly")
    mask = np.ones(image.shape, bool) if st.get("mask") is None else np.asarray(st["mask"]) > 0
    if mask.shape != image.shape:
      raise ValueError(f"stack {s}: mask shape {mask.shape} != image shape {image.shape}")
    if halo_mm > 0 and st.get("mask") is not None:
      mask = halo(mask, np.linalg.norm(np.asarray(st["affine"])[:3, :2], axis=0), halo_mm)
    affine = np.asarray(st["affine"], np.float64)
    frame, spacing = geometry.slice_frame(affine)
    nz = image.shape[2]
    idx = np.argwhere(mask)
    values.append(image[mask])
    vox.append(idx.astype(np.float32))
    slice_of.append(offset + idx[:, 2].astype(np.int32))
    world.append(np.c_[idx, np.ones(len(idx))] @ affine.T)
    per_slice["affine"].append(np.repeat(affine[None], nz, 0))
    per_slice["center"].append(geometry.slice_centers(affine, image.shape))
    per_slice["frame"].append(np.repeat(frame[None], nz, 0))
    per_slice["sigmas"].append(np.repeat(psf_sigmas(spacing[:2], float(thickness))[None], nz, 0))
    per_slice["stack"].append(np.full(nz, s, np.int32))
    per_slice["pos"].append(np.arange(nz, dtype=np.float32) / max(nz - 1, 1))
    per_slice["index"].append(np.arange(nz, dtype=np.int32))
    offset += nz
  out = {k: np.concatenate(v).astype(np.float32 if k not in ("stack", "index") else np.int32)
         for k, v in per_slice.items()}
  pts = np.concatenate(world)[:, :3]
  margin = max(float(st["thickness"]) for st in stacks) if margin_mm is None else margin_mm
  box = np.stack([pts.min(0) - margin, pts.max(0) + margin]) if bbox is None else np.asarray(bbox)
  out.update(values=np.concatenate(values), vox=np.concatenate(vox), slice=np.concatenate(slice_of),
             bbox=box.astype(np.float32), num_pixels=np.int32(sum(len(v) for v in values)),
             num_stacks=np.int32(len(stacks)))
  return out


def halo(mask: np.ndarray, spacing_xy: Sequence[float], halo_mm: float) -> np.ndarray:
  """``mask [X, Y, Z]`` grown in plane (each slice on its own) by every pixel within ``halo_mm`` of it."""
  dist = np.stack([ndimage.distance_transform_edt(~mask[:, :, z], sampling=spacing_xy) if mask[:, :, z].any()
                   else np.full(mask.shape[:2], np.inf) for z in range(mask.shape[2])], -1)
  return dist <= halo_mm


def pad_pixels(sl: dict[str, Any], size: int) -> dict[str, Any]:
  """Pads the pixel arrays to ``size`` entries (zeros) so subjects share shapes and a jitted fit compiles once.

  ``num_pixels`` keeps the real count; the fit samples pixels only below it.
  """
  p = len(sl["values"])
  if size < p:
    raise ValueError(f"pad_pixels: size {size} is smaller than the {p} pixels of the slice set")
  out = dict(sl)
  for k in ("values", "vox", "slice"):
    out[k] = np.concatenate([sl[k], np.zeros((size - p,) + sl[k].shape[1:], sl[k].dtype)])
  return out


def pixel_counts(sl: dict[str, Any]) -> np.ndarray:
  """Masked pixels per slice ``[S]`` (padding from :func:`pad_pixels` not counted)."""
  n = int(sl.get("num_pixels", len(sl["values"])))
  return np.bincount(np.asarray(sl["slice"])[:n], minlength=len(sl["stack"]))


def pixel_points(sl: dict[str, Any], idx: jnp.ndarray, offsets: jnp.ndarray, motion: jnp.ndarray) -> jnp.ndarray:
  """World positions of the PSF points of pixels ``idx [B]``.

  Args:
    sl: a :func:`prepare` slice set (arrays may be jnp).
    offsets: slice-frame PSF offsets in mm, ``[B, k, 3]`` or ``[k, 3]``.
    motion: ``[S, 6]`` per-slice rigid motion (rad, mm) about each slice centre.

  Returns:
    ``[B, k, 3]`` world points.
  """
  s = sl["slice"][idx]
  aff = sl["affine"][s]
  x0 = jnp.einsum("bij,bj->bi", aff[:, :3, :3], sl["vox"][idx]) + aff[:, :3, 3]
  off = jnp.broadcast_to(offsets, (idx.shape[0],) + offsets.shape[-2:])
  x = x0[:, None, :] + jnp.einsum("bij,bkj->bki", sl["frame"][s], off)
  t = geometry.rigid_matrix(motion[s], sl["center"][s])
  return jnp.einsum("bij,bkj->bki", t[:, :3, :3], x) + t[:, None, :3, 3]


def normalise(x: jnp.ndarray, bbox: jnp.ndarray) -> jnp.ndarray:
  """World mm -> ``[-1, 1]^3`` over the bounding box ``[2, 3]``."""
  return 2.0 * (x - bbox[0]) / (bbox[1] - bbox[0]) - 1.0


def acquire(volume_fn: Callable[[jnp.ndarray], jnp.ndarray], sl: dict[str, Any], idx: jnp.ndarray,
            offsets: jnp.ndarray, motion: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
  """Pixel values ``[B]``: the PSF-weighted mean of ``volume_fn`` (world points ``[N, 3]`` -> ``[N]``).

  ``weights [k]`` are quadrature weights (summing to 1); ``None`` is the Monte-Carlo mean.
  """
  pts = pixel_points(sl, idx, offsets, motion)
  v = volume_fn(pts.reshape(-1, 3)).reshape(pts.shape[:2])
  return v.mean(-1) if weights is None else v @ weights
