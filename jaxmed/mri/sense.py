"""Multi-coil, multi-frame SENSE: ``A = M F S`` and its adjoint, coil-map normalisation, CG-SENSE.

Shapes: image ``x [T, H, W]`` complex; coil maps ``S [C, H, W]`` (static over
frames); k-space ``y [T, C, H, W]``; mask ``M`` broadcastable to ``[T, 1, H, W]``
(e.g. ``[T, 1, 1, W]`` for phase-encoding lines along ``W``).

* ``sense_forward(x) = M * fft2c(S x)``;
* ``sense_adjoint(y) = sum_c conj(S_c) ifft2c(M * y)``.

With ``sum_c |S_c|^2 = 1`` (:func:`normalize_maps`) and a full mask,
``A^H A = I`` on the object.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed.mri.fft import fft2c, ifft2c


def expand_mask(mask: jnp.ndarray) -> jnp.ndarray:
  """``[T, W]`` line mask or ``[T, H, W]`` point mask -> ``[T, 1, H|1, W]`` (broadcasts over coils)."""
  mask = jnp.asarray(mask)
  if mask.ndim == 2:
    return mask[:, None, None, :]
  if mask.ndim == 3:
    return mask[:, None]
  return mask


def sense_forward(x, maps, mask):
  """``A x``: ``x [T, H, W]`` -> ``y [T, C, H, W]``."""
  return expand_mask(mask) * fft2c(maps[None] * x[:, None])


def sense_adjoint(y, maps, mask):
  """``A^H y``: ``y [T, C, H, W]`` -> ``x [T, H, W]``."""
  return jnp.sum(jnp.conj(maps)[None] * ifft2c(expand_mask(mask) * y), axis=1)


def normalize_maps(maps, eps: float = 1e-8):
  """Scales coil maps so ``sum_c |S_c|^2 = 1`` wherever any coil sees signal (0 elsewhere)."""
  rss = jnp.sqrt(jnp.sum(jnp.abs(maps) ** 2, axis=0, keepdims=True))
  return jnp.where(rss > eps, maps / jnp.maximum(rss, eps), 0.0)


def data_consistency(x, y, maps, mask, lam):
  """One gradient step on ``||A x - y||^2 / 2``: ``x - lam * A^H (A x - y)``."""
  return x - lam * sense_adjoint(sense_forward(x, maps, mask) - y, maps, mask)


def cg_sense(y, maps, mask, *, iters: int = 20, lam: float = 0.0, x0=None):
  """Conjugate gradients on ``(A^H A + lam I) x = A^H y`` (CG-SENSE, Pruessmann et al. 2001)."""
  def normal(x):
    return sense_adjoint(sense_forward(x, maps, mask), maps, mask) + lam * x

  rhs = sense_adjoint(y, maps, mask)
  x = jnp.zeros_like(rhs) if x0 is None else x0
  r = rhs - normal(x)
  p = r
  rs = jnp.vdot(r, r).real

  def body(_, carry):
    x, r, p, rs = carry
    ap = normal(p)
    alpha = rs / jnp.maximum(jnp.vdot(p, ap).real, 1e-30)
    x = x + alpha * p
    r = r - alpha * ap
    rs_new = jnp.vdot(r, r).real
    p = r + (rs_new / jnp.maximum(rs, 1e-30)) * p
    return x, r, p, rs_new

  x, *_ = jax.lax.fori_loop(0, iters, body, (x, r, p, rs))
  return x
