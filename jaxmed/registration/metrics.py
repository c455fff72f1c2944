"""Registration metrics: alignment (Dice, HD95) and regularity (Jacobian, folding, SDlogJ).

Alignment metrics compare a warped moving label map with the fixed one.
Regularity metrics look at ``J = det(I + grad u)``, the Jacobian determinant
of ``phi(x) = x + u(x)``. Two SDlogJ conventions are in use and both are
given, under their own names:

* :func:`sdlogj_l2r` - the Learn2Reg challenge's: ``std(log(clip(J + 3)))``
  after cropping 2 voxels from every border. The ``+3`` keeps folded voxels
  finite, so it is defined for any field, but it compresses the spread.
* :func:`sdlogj_masked` - the plain ``std(log J)`` over the voxels inside a
  mask (e.g. the fixed foreground) where ``J > 0``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage


def dice_per_label(pred: jax.Array, target: jax.Array, labels: Sequence[int]) -> jax.Array:
  """Dice of each label: ``2|P_l & T_l| / (|P_l| + |T_l|)``.

  Args:
    pred, target: ``[B, *S]`` integer label maps.
    labels: the label values to score (usually excluding background 0).

  Returns:
    ``[B, L]``; NaN where a label is absent from both maps.
  """
  labels = jnp.asarray(labels)
  p = pred[..., None] == labels
  t = target[..., None] == labels
  axes = tuple(range(1, pred.ndim))
  inter = jnp.sum(p & t, axis=axes).astype(jnp.float32)
  total = (jnp.sum(p, axis=axes) + jnp.sum(t, axis=axes)).astype(jnp.float32)
  return jnp.where(total > 0, 2.0 * inter / jnp.maximum(total, 1.0), jnp.nan)


def displacement_gradient(disp: jax.Array, spacing: Sequence[float] | None = None) -> jax.Array:
  """``du_i/dx_j`` by central differences (one-sided at the border): ``[B, *S, n, n]``."""
  n = disp.shape[-1]
  spacing = (1.0,) * n if spacing is None else tuple(float(s) for s in spacing)
  cols = [jnp.gradient(disp, spacing[j], axis=1 + j) for j in range(n)]  # each [B, *S, n] = du/dx_j
  return jnp.stack(cols, axis=-1)


def jacobian_determinant(disp: jax.Array, spacing: Sequence[float] | None = None) -> jax.Array:
  """``J(x) = det(I + grad u(x))`` with central differences; ``[B, *S, n]`` -> ``[B, *S]``.

  With ``spacing``, ``disp`` is in physical units and derivatives are per unit
  length. For ``u(x) = A x`` every interior voxel has ``J = det(I + A)``.
  """
  n = disp.shape[-1]
  return jnp.linalg.det(displacement_gradient(disp, spacing) + jnp.eye(n, dtype=disp.dtype))


def folding_percent(jac: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Percentage of voxels with ``J <= 0`` (inside ``mask`` if given): ``[B, *S]`` -> ``[B]``."""
  axes = tuple(range(1, jac.ndim))
  folded = (jac <= 0).astype(jnp.float32)
  if mask is None:
    return 100.0 * jnp.mean(folded, axis=axes)
  m = mask.astype(jnp.float32)
  return 100.0 * jnp.sum(folded * m, axis=axes) / jnp.maximum(jnp.sum(m, axis=axes), 1.0)


def sdlogj_l2r(jac: jax.Array, crop: int = 2) -> jax.Array:
  """Learn2Reg SDlogJ: ``std(log(clip(J + 3, 1e-9, 1e9)))`` over the grid cropped by ``crop``.

  ``[B, *S]`` -> ``[B]``. Identity gives 0, as does any affine field.
  """
  logj = jnp.log(jnp.clip(jac + 3.0, 1e-9, 1e9))
  inner = logj[(slice(None),) + (slice(crop, -crop if crop else None),) * (jac.ndim - 1)]
  return jnp.std(inner.reshape(inner.shape[0], -1), axis=1)


def sdlogj_masked(jac: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Plain SDlogJ: ``std(log J)`` over voxels in ``mask`` with ``J > 0``; ``[B, *S]`` -> ``[B]``.

  Folded voxels are left out (their log is undefined); report
  :func:`folding_percent` beside it. NaN if no voxel qualifies.
  """
  valid = jac > 0 if mask is None else (jac > 0) & mask.astype(bool)
  w = valid.astype(jnp.float32).reshape(jac.shape[0], -1)
  logj = jnp.log(jnp.where(valid, jac, 1.0)).reshape(jac.shape[0], -1)
  count = jnp.sum(w, axis=1)
  mean = jnp.sum(w * logj, axis=1) / jnp.maximum(count, 1.0)
  var = jnp.sum(w * (logj - mean[:, None]) ** 2, axis=1) / jnp.maximum(count, 1.0)
  return jnp.where(count > 0, jnp.sqrt(var), jnp.nan)


def _surface(mask: np.ndarray) -> np.ndarray:
  return mask & ~scipy.ndimage.binary_erosion(mask, border_value=0)


def hd95(pred: np.ndarray, target: np.ndarray, labels: Sequence[int],
         spacing: Sequence[float] | None = None) -> np.ndarray:
  """95th-percentile symmetric Hausdorff distance per label (host-side, NumPy/SciPy).

  For each label, the distances from every surface voxel of one map to the
  nearest surface voxel of the other are collected in both directions; HD95
  is the larger of the two 95th percentiles (the "robust Hausdorff" of the
  DeepMind surface-distance package, without surfel-area weighting).

  Args:
    pred, target: ``[B, *S]`` integer label maps.
    labels: label values to score.
    spacing: voxel size per axis (distances in those units); default 1.

  Returns:
    ``[B, L]`` float64; NaN where a label is missing from either map.
  """
  pred, target = np.asarray(pred), np.asarray(target)
  spacing = None if spacing is None else tuple(float(s) for s in spacing)
  out = np.full((pred.shape[0], len(labels)), np.nan)
  for b in range(pred.shape[0]):
    for k, lab in enumerate(labels):
      a, t = pred[b] == lab, target[b] == lab
      if not a.any() or not t.any():
        continue
      sa, st = _surface(a), _surface(t)
      d_to_t = scipy.ndimage.distance_transform_edt(~st, sampling=spacing)
      d_to_a = scipy.ndimage.distance_transform_edt(~sa, sampling=spacing)
      out[b, k] = max(np.percentile(d_to_t[sa], 95), np.percentile(d_to_a[st], 95))
  return out
