"""Spatial transformer, displacement composition and SVF integration (2D and 3D).

Conventions used throughout ``jaxmed.registration``:

* images are channels-last, ``[B, *S, C]`` with ``S`` of length ``n`` (2 or 3);
* a displacement ``u`` is ``[B, *S, n]``; component ``i`` moves along array
  axis ``i``. It is in voxels, or in physical units (mm) when a ``spacing``
  is passed;
* warping is backward: ``warp(I, u)(x) = I(x + u(x))``, so a moving image is
  resampled onto the fixed grid (the spatial transformer of VoxelMorph).

Samples outside the grid take the nearest border value (``mode="nearest"``).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates


def identity_grid(shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """Voxel coordinates ``x`` of a grid: ``[*S, n]`` with ``grid[p] == p``."""
  axes = [jnp.arange(s, dtype=dtype) for s in shape]
  return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1)


def _to_voxels(disp: jax.Array, spacing: Sequence[float] | None) -> jax.Array:
  if spacing is None:
    return disp
  spacing = jnp.asarray(spacing, disp.dtype)
  if spacing.shape != (disp.shape[-1],):
    raise ValueError(f"spacing {tuple(spacing.tolist())} needs one value per axis ({disp.shape[-1]})")
  return disp / spacing


def _resample(volume: jax.Array, coords: jax.Array, order: int) -> jax.Array:
  """``volume[*S]`` sampled at ``coords[*S, n]`` (voxel units)."""
  return map_coordinates(volume, [coords[..., i] for i in range(coords.shape[-1])], order=order, mode="nearest")


def warp(image: jax.Array, disp: jax.Array, *, spacing: Sequence[float] | None = None, order: int = 1) -> jax.Array:
  """Spatial transformer: ``image(x + u(x))``.

  Args:
    image: ``[B, *S, C]`` moving image (any float channels, e.g. one-hot labels).
    disp: ``[B, *S, n]`` displacement ``u``, in voxels or in the units of ``spacing``.
    spacing: physical voxel size per axis; ``None`` means ``disp`` is in voxels.
    order: 1 for (bi/tri)linear interpolation, 0 for nearest neighbour.

  Returns:
    ``[B, *S, C]`` warped image on the fixed grid.
  """
  n = disp.shape[-1]
  if image.ndim != n + 2 or image.shape[1:-1] != disp.shape[1:-1] or image.shape[0] != disp.shape[0]:
    raise ValueError(f"warp: image {image.shape} must be [B, *S, C] matching disp {disp.shape} = [B, *S, {n}]")
  coords = identity_grid(disp.shape[1:-1], disp.dtype) + _to_voxels(disp, spacing)
  per_channel = jax.vmap(lambda v, c: _resample(v, c, order), in_axes=(-1, None), out_axes=-1)
  return jax.vmap(per_channel)(image, coords)


def warp_labels(labels: jax.Array, disp: jax.Array, *, num_labels: int | None = None,
                spacing: Sequence[float] | None = None, method: str = "nearest") -> jax.Array:
  """Warps an integer label map.

  Args:
    labels: ``[B, *S]`` integer labels.
    disp: ``[B, *S, n]``.
    num_labels: number of classes (needed for ``method="onehot"``).
    method: ``"nearest"`` (nearest-neighbour lookup), or ``"onehot"``:
      linear interpolation of the one-hot encoding followed by argmax, which
      gives smoother boundaries.

  Returns:
    ``[B, *S]`` integer labels (same dtype as ``labels``).
  """
  if method == "nearest":
    out = warp(labels[..., None].astype(disp.dtype), disp, spacing=spacing, order=0)[..., 0]
    return jnp.round(out).astype(labels.dtype)
  if method == "onehot":
    if num_labels is None:
      raise ValueError("warp_labels(method='onehot') needs num_labels")
    soft = warp(jax.nn.one_hot(labels, num_labels, dtype=disp.dtype), disp, spacing=spacing, order=1)
    return jnp.argmax(soft, axis=-1).astype(labels.dtype)
  raise ValueError(f"warp_labels: method must be 'nearest' or 'onehot', got {method!r}")


def compose(u: jax.Array, v: jax.Array, *, spacing: Sequence[float] | None = None) -> jax.Array:
  """Displacement of ``phi_u o phi_v`` where ``phi_u(x) = x + u(x)``.

  ``(phi_u o phi_v)(x) = x + v(x) + u(x + v(x))``, hence
  ``warp(warp(I, u), v) == warp(I, compose(u, v))`` up to interpolation.
  Shapes: ``u, v`` are ``[B, *S, n]``; returns ``[B, *S, n]``.
  """
  return v + warp(u, v, spacing=spacing, order=1)


def integrate_svf(velocity: jax.Array, *, steps: int = 7, spacing: Sequence[float] | None = None) -> jax.Array:
  """Scaling and squaring: the displacement of ``exp(v)`` for a stationary velocity field.

  ``u_0 = v / 2**steps`` and ``u_{k+1} = compose(u_k, u_k)``; after ``steps``
  squarings ``x + u`` approximates the time-1 flow of ``v`` (Arsigny et al.
  2006; VoxelMorph-diff uses 7 steps). Shapes: ``[B, *S, n]`` in and out.
  """
  # fori_loop rather than a Python loop: one traced squaring, so compile time
  # does not grow with ``steps``.
  return jax.lax.fori_loop(0, steps, lambda _, u: compose(u, u, spacing=spacing), velocity / (2.0 ** steps))
