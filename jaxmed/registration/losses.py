"""Registration losses: MSE, local NCC, gradient smoothness, Dice.

All take channels-last arrays (``[B, *S, C]`` images, ``[B, *S, n]`` fields)
and return a scalar averaged over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def mse(fixed: jax.Array, warped: jax.Array) -> jax.Array:
  """Mean squared intensity difference."""
  return jnp.mean((fixed - warped) ** 2)


def _box_sum(x: jax.Array, window: int) -> jax.Array:
  """Sum over a ``window``-wide cube around every voxel, zero-padded; ``[B, *S, C]`` in and out."""
  n = x.ndim - 2
  dims = (1,) + (window,) * n + (1,)
  return jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, (1,) * x.ndim, "SAME")


def _window_counts(shape, window: int) -> np.ndarray:
  """Number of in-image voxels in the window around each voxel, ``[*S]`` (separable, host-side)."""
  r = window // 2
  counts = 1.0
  for s in shape:
    i = np.arange(s)
    c = np.minimum(i + r, s - 1) - np.maximum(i - r, 0) + 1
    counts = np.multiply.outer(counts, c) if np.ndim(counts) else c.astype(np.float64)
  return counts


def local_ncc(fixed: jax.Array, warped: jax.Array, *, window: int = 9, eps: float = 1e-5) -> jax.Array:
  """Mean local squared normalised cross-correlation, in ``[0, 1]``.

  For every voxel, over a ``window**n`` neighbourhood ``W`` with sums
  ``S_I, S_J, S_II, S_JJ, S_IJ`` and ``|W|`` voxels:

    cc = (S_IJ - S_I S_J / |W|)^2 / ((S_II - S_I^2/|W|) (S_JJ - S_J^2/|W|) + eps)

  This is the squared local correlation used by VoxelMorph (window 9, eps
  1e-5). Being squared, it is 1 for ``J = a I + b`` with either sign of ``a``
  (where the window has variance), and 0 for unrelated images.

  VoxelMorph zero-pads and divides by the full ``window**n`` at the border;
  we divide by the number of voxels actually inside the image, which gives
  the same value in the interior and exact window statistics at the border.
  """
  size = jnp.asarray(_window_counts(fixed.shape[1:-1], window), fixed.dtype)[None, ..., None]
  s_i, s_j = _box_sum(fixed, window), _box_sum(warped, window)
  s_ii, s_jj = _box_sum(fixed * fixed, window), _box_sum(warped * warped, window)
  s_ij = _box_sum(fixed * warped, window)
  cross = s_ij - s_i * s_j / size
  var_i = s_ii - s_i * s_i / size
  var_j = s_jj - s_j * s_j / size
  return jnp.mean(cross * cross / (var_i * var_j + eps))


def ncc_loss(fixed: jax.Array, warped: jax.Array, *, window: int = 9, eps: float = 1e-5) -> jax.Array:
  """``1 - local_ncc``: non-negative, 0 at perfect local linear agreement.

  VoxelMorph minimises ``-cc``; the constant shift changes no gradient.
  """
  return 1.0 - local_ncc(fixed, warped, window=window, eps=eps)


def gradient_loss(field: jax.Array, *, penalty: str = "l2") -> jax.Array:
  """Smoothness: mean forward difference of a field, averaged over spatial axes.

  ``(1/n) sum_d mean(|u[x + e_d] - u[x]|^p)`` with ``p = 2`` (``"l2"``) or
  ``p = 1`` (``"l1"``); the mean runs over batch, voxels and components. For
  a linear field ``u = A x`` the l2 value is ``||A||_F^2 / n^2``.

  Args:
    field: ``[B, *S, n]`` displacement or velocity.
  """
  n = field.ndim - 2
  terms = []
  for d in range(1, n + 1):
    diff = jnp.diff(field, axis=d)
    if penalty == "l2":
      terms.append(jnp.mean(diff * diff))
    elif penalty == "l1":
      terms.append(jnp.mean(jnp.abs(diff)))
    else:
      raise ValueError(f"gradient_loss: penalty must be 'l1' or 'l2', got {penalty!r}")
  return sum(terms) / n


def dice_loss(fixed_onehot: jax.Array, warped_onehot: jax.Array, *, eps: float = 1e-5) -> jax.Array:
  """Soft Dice loss on one-hot (or probability) labels ``[B, *S, L]``: ``1 - mean_l Dice_l``.

  ``Dice_l = 2 sum(a_l b_l) / (sum a_l + sum b_l)``, sums over batch and voxels.
  """
  axes = tuple(range(fixed_onehot.ndim - 1))
  inter = jnp.sum(fixed_onehot * warped_onehot, axis=axes)
  total = jnp.sum(fixed_onehot, axis=axes) + jnp.sum(warped_onehot, axis=axes)
  return 1.0 - jnp.mean(2.0 * inter / (total + eps))
