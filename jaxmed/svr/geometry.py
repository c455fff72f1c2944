"""Rigid geometry for slice-to-volume reconstruction.

Conventions (all world coordinates in mm, NIfTI RAS as in the stack affines):

* A rigid transform is a 6-vector ``(rot[3], trans[3])``: rotation in radians
  (axis-angle by default, or Euler ZXZ) and translation in mm.
* Slice motion acts in world space *about the slice centre* ``c``:
  ``x -> R (x - c) + c + t``. Rotations therefore do not move the slice
  centre, and the rotation and translation errors are separable (degrees
  and mm), which is how motion is reported.
* A stack pixel ``(i, j)`` of slice ``k`` sits at voxel ``(i, j, k)``;
  ``affine @ [i, j, k, 1]`` gives its world position before motion.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def axis_angle_matrix(v: jnp.ndarray) -> jnp.ndarray:
  """Rodrigues' formula. ``v [..., 3]`` (axis * angle, radians) -> ``R [..., 3, 3]``; smooth at 0."""
  theta2 = jnp.sum(v * v, axis=-1)[..., None, None]
  small = theta2 < 1e-8
  # sin(t)/t and (1-cos t)/t^2, with Taylor series near 0; the safe t keeps both branches' gradients finite
  t2 = jnp.where(small, 1.0, theta2)
  t = jnp.sqrt(t2)
  a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(t) / t)
  b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(t)) / t2)
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  zero = jnp.zeros_like(x)
  k = jnp.stack([jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1), jnp.stack([-y, x, zero], -1)], -2)
  eye = jnp.broadcast_to(jnp.eye(3, dtype=v.dtype), k.shape)
  return eye + a * k + b * (k @ k)


def euler_zxz_matrix(angles: jnp.ndarray) -> jnp.ndarray:
  """Intrinsic Z-X-Z Euler angles ``[..., 3]`` (radians) -> ``R = Rz(a) Rx(b) Rz(c)`` ``[..., 3, 3]``."""
  def rz(t):
    c, s, o, z = jnp.cos(t), jnp.sin(t), jnp.ones_like(t), jnp.zeros_like(t)
    return jnp.stack([jnp.stack([c, -s, z], -1), jnp.stack([s, c, z], -1), jnp.stack([z, z, o], -1)], -2)

  def rx(t):
    c, s, o, z = jnp.cos(t), jnp.sin(t), jnp.ones_like(t), jnp.zeros_like(t)
    return jnp.stack([jnp.stack([o, z, z], -1), jnp.stack([z, c, -s], -1), jnp.stack([z, s, c], -1)], -2)

  return rz(angles[..., 0]) @ rx(angles[..., 1]) @ rz(angles[..., 2])


ROTATIONS = {"axis_angle": axis_angle_matrix, "euler_zxz": euler_zxz_matrix}


def rotation_matrix(rot: jnp.ndarray, parameterisation: str = "axis_angle") -> jnp.ndarray:
  if parameterisation not in ROTATIONS:
    raise ValueError(f"rotation parameterisation {parameterisation!r}; expected one of {sorted(ROTATIONS)}")
  return ROTATIONS[parameterisation](rot)


def matrix_axis_angle(r: np.ndarray) -> np.ndarray:
  """Inverse of :func:`axis_angle_matrix` for angles in [0, pi): ``R [..., 3, 3]`` -> ``v [..., 3]`` (NumPy)."""
  r = np.asarray(r, np.float64)
  cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
  theta = np.arccos(cos)
  w = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
  sin = np.sin(theta)[..., None]
  scale = np.where(np.abs(sin) > 1e-8, theta[..., None] / (2.0 * np.where(np.abs(sin) > 1e-8, sin, 1.0)), 0.5)
  return w * scale


def rigid_matrix(params: jnp.ndarray, center: jnp.ndarray | None = None,
                 parameterisation: str = "axis_angle") -> jnp.ndarray:
  """``params [..., 6]`` (rot, trans mm) -> homogeneous ``[..., 4, 4]`` of ``x -> R (x - c) + c + t``."""
  r = rotation_matrix(params[..., :3], parameterisation)
  t = params[..., 3:]
  if center is not None:
    t = t + center - jnp.einsum("...ij,...j->...i", r, center)
  top = jnp.concatenate([r, t[..., :, None]], axis=-1)
  bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], params.dtype), top.shape[:-2] + (1, 4))
  return jnp.concatenate([top, bottom], axis=-2)


def compose(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """``a o b`` for homogeneous ``[..., 4, 4]`` transforms (apply ``b`` first)."""
  return a @ b


def invert(t: jnp.ndarray) -> jnp.ndarray:
  """Inverse of a rigid homogeneous ``[..., 4, 4]`` transform: ``[R^T, -R^T t]``."""
  rt = jnp.swapaxes(t[..., :3, :3], -1, -2)
  tr = -jnp.einsum("...ij,...j->...i", rt, t[..., :3, 3])
  top = jnp.concatenate([rt, tr[..., :, None]], axis=-1)
  return jnp.concatenate([top, t[..., 3:, :]], axis=-2)


def apply(t: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
  """Applies ``[..., 4, 4]`` to points ``[..., 3]`` (broadcasting over leading axes)."""
  return jnp.einsum("...ij,...j->...i", t[..., :3, :3], x) + t[..., :3, 3]


def slice_centers(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
  """World centre of every slice of a stack: ``[n_slices, 3]``."""
  k = np.arange(shape[2], dtype=np.float64)
  vox = np.stack([np.full_like(k, (shape[0] - 1) / 2), np.full_like(k, (shape[1] - 1) / 2), k, np.ones_like(k)], -1)
  return (vox @ np.asarray(affine, np.float64).T)[:, :3]


def slice_frame(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Unit in-plane/through-plane axes ``U [3, 3]`` (columns) and voxel spacing ``[3]`` of a stack affine."""
  m = np.asarray(affine, np.float64)[:3, :3]
  spacing = np.linalg.norm(m, axis=0)
  return m / spacing, spacing


def rotation_error_deg(r_est: np.ndarray, r_true: np.ndarray) -> np.ndarray:
  """Geodesic angle between rotations ``[..., 3, 3]``, in degrees."""
  rel = np.swapaxes(np.asarray(r_est), -1, -2) @ np.asarray(r_true)
  cos = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
  return np.degrees(np.arccos(cos))
