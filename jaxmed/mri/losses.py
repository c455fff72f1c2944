"""SSFL-Recon's losses: the parallel self-supervised loss, SSDU's loss, InfoNCE and VICReg.

* :func:`parallel_loss` (stage 2): two re-undersampled inputs (masks ``M1``,
  ``M2`` inside the acquired set) reconstructed by the same network give
  ``x1``, ``x2``; the loss is ``sum |x1 - x2|^2 + sum sqrt(|A_M2 x1 - y2|^2 + eps)
  + sum sqrt(|A_M1 x2 - y1|^2 + eps)``, summed over the k-space locations of
  each mask (so unacquired k-space never enters).
* :func:`ssdu_loss`: ``0.5 ||y_L - A_L x||_2 / ||y_L||_2 + 0.5 ||y_L - A_L x||_1 / ||y_L||_1``
  on the held-out (loss) set.
* :func:`info_nce`: the contrastive loss with temperature 0.1 over two views
  per subject; negatives can be restricted by a mask (other subjects with
  ``|R1 - R2| >= 5`` in SSFL-Recon).
* :func:`vicreg`: invariance (MSE) x 25 + variance (hinge on the std, target 1)
  x 25 + covariance (off-diagonal squares / d) x 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed.mri.sense import expand_mask, sense_forward


def _masked_sqrt_sum(residual, mask, eps):
  m = expand_mask(mask).astype(jnp.float32)
  return jnp.sum(m * jnp.sqrt(jnp.abs(residual) ** 2 + eps))


def parallel_loss(x1, x2, y1, y2, maps, mask1, mask2, *, eps: float = 1e-8):
  """One subject: ``x [T, H, W]``, ``y [T, C, H, W]`` (already masked), ``maps [C, H, W]``, masks ``[T, ...]``."""
  consistency = jnp.sum(jnp.abs(x1 - x2) ** 2)
  cross = (_masked_sqrt_sum(sense_forward(x1, maps, mask2) - y2, mask2, eps)
           + _masked_sqrt_sum(sense_forward(x2, maps, mask1) - y1, mask1, eps))
  return consistency + cross, {"consistency": consistency, "cross": cross}


def ssdu_loss(x, y_loss, maps, loss_mask):
  """SSDU's normalised L2 + L1 k-space loss on the loss set (one subject)."""
  r = sense_forward(x, maps, loss_mask) - y_loss
  l2 = jnp.sqrt(jnp.sum(jnp.abs(r) ** 2)) / (jnp.sqrt(jnp.sum(jnp.abs(y_loss) ** 2)) + 1e-12)
  l1 = jnp.sum(jnp.abs(r)) / (jnp.sum(jnp.abs(y_loss)) + 1e-12)
  return 0.5 * l2 + 0.5 * l1


def info_nce(z1, z2, *, temperature: float = 0.1, negative_mask=None):
  """NT-Xent over ``2N`` views: ``z1, z2 [N, D]`` are two views of the same ``N`` subjects.

  ``negative_mask [2N, 2N]`` (optional, bool) says which pairs may serve as
  negatives; the positive of view ``i`` is its other view, always kept.
  """
  z = jnp.concatenate([z1, z2], axis=0)
  z = z / (jnp.linalg.norm(z, axis=-1, keepdims=True) + 1e-12)
  n = z1.shape[0]
  logits = z @ z.T / temperature
  idx = jnp.arange(2 * n)
  positive = jnp.concatenate([idx[n:], idx[:n]])
  allowed = ~jnp.eye(2 * n, dtype=bool)
  if negative_mask is not None:
    allowed = allowed & (negative_mask | (idx[None, :] == positive[:, None]))
  logits = jnp.where(allowed, logits, -jnp.inf)
  return -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[idx, positive])


def vicreg(z1, z2, *, sim: float = 25.0, var: float = 25.0, cov: float = 1.0, eps: float = 1e-4):
  """VICReg (Bardes et al., 2022) on ``z1, z2 [N, D]``; returns ``(loss, parts)``."""
  invariance = jnp.mean((z1 - z2) ** 2)

  def variance(z):
    return jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(jnp.var(z, axis=0) + eps)))

  def covariance(z):
    zc = z - z.mean(0)
    c = zc.T @ zc / (z.shape[0] - 1)
    off = c - jnp.diag(jnp.diag(c))
    return jnp.sum(off ** 2) / z.shape[1]

  v = variance(z1) + variance(z2)
  c = covariance(z1) + covariance(z2)
  return sim * invariance + var * v + cov * c, {"invariance": invariance, "variance": v, "covariance": c}
