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

:func:`ndv_percent` is the non-diffeomorphic volume that Learn2Reg reports
since 2024, :func:`keypoint_tre` the NLST keypoint error, and :func:`hd95`
Learn2Reg's surfel-weighted HD95 (:mod:`jaxmed.registration.surface`).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

from jaxmed.registration.surface import hd95_l2r
from jaxmed.registration.warp import identity_grid


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


def _simplex_volumes(phi: jax.Array) -> list[jax.Array]:
  """Signed volumes of the simplices of both cell decompositions of ``phi = x + u`` (``[B, *S, n]``).

  2D: each pixel cell splits into 2 triangles along either diagonal (4 in all).
  3D: each voxel cell splits into 5 tetrahedra in either of two ways (4 corner
  tetrahedra and a central one each; 10 in all). Each entry is ``[B, *(S-1)]``,
  positive for an orientation-preserving simplex (the identity gives
  ``1/2`` per triangle, ``1/6`` per corner and ``1/3`` per central tetrahedron).
  """
  n = phi.shape[-1]
  shape = phi.shape[1:-1]

  def corner(offset):
    return phi[(slice(None),) + tuple(slice(o, o + s - 1) for o, s in zip(offset, shape))]

  def signed(vertices):
    p0 = corner(vertices[0])
    edges = jnp.stack([corner(v) - p0 for v in vertices[1:]], axis=-1)  # [B, *S-1, n, n]
    ref = np.linalg.det(np.asarray([np.subtract(v, vertices[0]) for v in vertices[1:]], np.float64).T)
    return jnp.linalg.det(edges) * (np.sign(ref) / math.factorial(n))

  if n == 2:
    simplices = [((0, 0), (1, 0), (0, 1)), ((1, 1), (0, 1), (1, 0)),  # split along the (1,0)-(0,1) diagonal
                 ((1, 0), (1, 1), (0, 0)), ((0, 1), (0, 0), (1, 1))]  # split along the (0,0)-(1,1) diagonal
  elif n == 3:
    simplices = []
    for parity in (0, 1):  # the two 5-tetrahedra decompositions of a cube
      even = [c for c in itertools.product((0, 1), repeat=3) if sum(c) % 2 == parity]
      odd = [c for c in itertools.product((0, 1), repeat=3) if sum(c) % 2 != parity]
      simplices.append(tuple(even))  # the central tetrahedron
      for c in odd:  # a corner tetrahedron: the corner and its three axis neighbours
        simplices.append((c,) + tuple(tuple(v ^ (i == j) for j, v in enumerate(c)) for i in range(3)))
  else:
    raise ValueError(f"non-diffeomorphic volume needs n = 2 or 3 spatial axes, got {n}")
  return [signed(s) for s in simplices]


def ndv_percent(disp: jax.Array, mask: jax.Array | None = None,
                spacing: Sequence[float] | None = None) -> jax.Array:
  """Non-diffeomorphic volume (Liu et al., IJCV 2024; Learn2Reg), in percent: ``[B, *S, n]`` -> ``[B]``.

  ``phi = x + u`` is read as piecewise linear on the simplices of each grid
  cell; the non-diffeomorphic volume is the total volume of the simplices
  ``phi`` inverts, averaged over the two decompositions of a cell, as a
  percentage of the cells' volume (of the cells whose first corner lies in
  ``mask``, when given). A diffeomorphism on the grid gives 0. Unlike the
  folding percentage, it weights each fold by how much volume it inverts.
  """
  n = disp.shape[-1]
  voxels = disp if spacing is None else disp / jnp.asarray(spacing, disp.dtype)
  phi = identity_grid(disp.shape[1:-1], disp.dtype) + voxels
  neg = sum(jnp.maximum(-v, 0.0) for v in _simplex_volumes(phi)) / 2.0  # [B, *S-1], two schemes averaged
  cells = jnp.ones_like(neg) if mask is None else mask[(slice(None),) + (slice(0, -1),) * n].astype(neg.dtype)
  axes = tuple(range(1, neg.ndim))
  return 100.0 * jnp.sum(neg * cells, axis=axes) / jnp.maximum(jnp.sum(cells, axis=axes), 1.0)


def keypoint_tre(disp: jax.Array, fixed_kp: jax.Array, moving_kp: jax.Array,
                 spacing: Sequence[float] | None = None) -> jax.Array:
  """Mean target registration error per pair (Learn2Reg NLST): ``[B]``.

  ``phi(p) = p + u(p)`` maps a fixed keypoint to the moving image; the error
  is ``|phi(p_f) - p_m|`` in physical units (``spacing``, default voxels).

  Args:
    disp: ``[B, *S, n]`` displacement in voxels, sampled linearly at the keypoints.
    fixed_kp, moving_kp: ``[B, P, n]`` corresponding voxel coordinates; rows
      of NaN are padding for pairs with fewer than ``P`` keypoints.
  """
  n = disp.shape[-1]
  scale = jnp.ones((n,), disp.dtype) if spacing is None else jnp.asarray(spacing, disp.dtype)
  valid = jnp.all(jnp.isfinite(fixed_kp) & jnp.isfinite(moving_kp), axis=-1)  # [B, P]
  pts = jnp.where(valid[..., None], fixed_kp, 0.0)

  def sample(u, p):  # u [*S, n], p [P, n] -> [P, n]
    return jnp.stack([map_coordinates(u[..., i], list(p.T), order=1, mode="nearest") for i in range(n)], -1)

  moved = pts + jax.vmap(sample)(disp, pts)
  err = jnp.linalg.norm((moved - jnp.where(valid[..., None], moving_kp, 0.0)) * scale, axis=-1)
  return jnp.sum(jnp.where(valid, err, 0.0), axis=1) / jnp.maximum(jnp.sum(valid, axis=1), 1)


def hd95(pred: np.ndarray, target: np.ndarray, labels: Sequence[int],
         spacing: Sequence[float] | None = None, moving: np.ndarray | None = None) -> np.ndarray:
  """Learn2Reg HD95 per pair and label, ``[B, *S]`` -> ``[B, L]``: see :func:`~jaxmed.registration.surface.hd95_l2r`."""
  return hd95_l2r(pred, target, labels, moving=moving, spacing=spacing)
