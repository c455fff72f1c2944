"""KL divergence between Gaussians given by mean and *precision*, with its pieces.

For ``N0 = N(mu0, Lambda0^-1)`` and ``N1 = N(mu1, Lambda1^-1)`` in ``k`` dimensions,

  KL(N0 || N1) = 1/2 [ tr(Lambda1 Lambda0^-1) + d^T Lambda1 d - k + log det Lambda0 - log det Lambda1 ],

with ``d = mu1 - mu0``. Each function returns the total and the three pieces
``trace`` (``tr(Lambda1 Lambda0^-1) - k``), ``mahalanobis`` (``d^T Lambda1 d``)
and ``logdet`` (``log det Lambda0 - log det Lambda1``); ``kl = (trace +
mahalanobis + logdet) / 2``. Full precisions use Cholesky factors; pass
float64 arrays (with ``jax_enable_x64``) for the small differences LSI needs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl


def _pieces(trace, maha, logdet):
  return {"kl": 0.5 * (trace + maha + logdet), "trace": trace, "mahalanobis": maha, "logdet": logdet}


def kl_diagonal(mu0, prec0, mu1, prec1) -> dict[str, jax.Array]:
  """KL between diagonal Gaussians; ``prec*`` are ``[k]`` precision diagonals."""
  d = mu1 - mu0
  trace = jnp.sum(prec1 / prec0) - mu0.shape[-1]
  maha = jnp.sum(prec1 * d * d)
  logdet = jnp.sum(jnp.log(prec0)) - jnp.sum(jnp.log(prec1))
  return _pieces(trace, maha, logdet)


def kl_full(mu0, prec0, mu1, prec1) -> dict[str, jax.Array]:
  """KL between full-covariance Gaussians; ``prec*`` are ``[k, k]`` SPD precision matrices."""
  l0 = jnp.linalg.cholesky(prec0)
  l1 = jnp.linalg.cholesky(prec1)
  # tr(Lambda1 Lambda0^-1) = ||L0^-1 L1||_F^2 with Lambda = L L^T.
  a = jsl.solve_triangular(l0, l1, lower=True)
  trace = jnp.sum(a * a) - mu0.shape[-1]
  d = mu1 - mu0
  maha = jnp.sum((l1.T @ d) ** 2)
  logdet = 2.0 * (jnp.sum(jnp.log(jnp.diag(l0))) - jnp.sum(jnp.log(jnp.diag(l1))))
  return _pieces(trace, maha, logdet)
