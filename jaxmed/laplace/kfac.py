"""KFAC Laplace posterior of a linear probe (``logits = phi W + b``), with an exact KL.

For a dense layer with inputs ``a_n = [phi_n, 1]`` (bias folded in), the GGN
of the stacked weights ``M = [W; b]`` (``[D+1, C]``, flattened row-major) is
``sum_n (a_n a_n^T) (x) H_n``. KFAC replaces it by ``A (x) G`` with

  A = sum_n w_n a_n a_n^T,   G = (sum_n w_n H_n) / (sum_n w_n),

which is exact when ``H_n`` does not depend on ``n`` (Gaussian regression).
The posterior precision is ``A (x) G + delta I``. Unlike the official LSI
code's KFAC path, the prior is kept and the log-determinant is computed:
with ``A = U_A diag(alpha) U_A^T`` and ``G = U_G diag(gamma) U_G^T`` the
eigenvalues are ``alpha_i gamma_j + delta``.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from jaxmed.laplace.curvature import output_hessian


@flax.struct.dataclass
class KFACPosterior:
  """``mean`` ``[D+1, C]`` (kernel rows, then the bias row); factors ``a`` ``[D+1, D+1]``, ``g`` ``[C, C]``."""
  mean: jax.Array
  a: jax.Array
  g: jax.Array
  prior_precision: jax.Array

  def eigenvalues(self) -> jax.Array:
    """``[D+1, C]`` eigenvalues ``alpha_i gamma_j + delta`` of the precision."""
    return jnp.outer(jnp.linalg.eigvalsh(self.a), jnp.linalg.eigvalsh(self.g)) + self.prior_precision

  def log_det_precision(self) -> jax.Array:
    return jnp.sum(jnp.log(self.eigenvalues()))

  def sample(self, rng: jax.Array, n: int) -> jax.Array:
    """``n`` draws of ``[kernel; bias]``: ``[n, D+1, C]``.

    With ``A = U_A diag(alpha) U_A^T`` and ``G = U_G diag(gamma) U_G^T``,
    ``M + U_A (E / sqrt(alpha gamma^T + delta)) U_G^T`` with ``E`` standard normal.
    """
    alpha, ua = jnp.linalg.eigh(self.a)
    gamma, ug = jnp.linalg.eigh(self.g)
    scale = 1.0 / jnp.sqrt(jnp.outer(alpha, gamma) + self.prior_precision)
    eps = jax.random.normal(rng, (n,) + self.mean.shape, self.mean.dtype)
    return self.mean + jnp.einsum("ij,njc,dc->nid", ua, eps * scale, ug)

  def dense_precision(self) -> jax.Array:
    """The ``[(D+1)C, (D+1)C]`` matrix, for checks on small probes."""
    k = self.mean.size
    return jnp.kron(self.a, self.g) + self.prior_precision * jnp.eye(k, dtype=self.a.dtype)


def dense_probe_params(params) -> tuple[jax.Array, jax.Array] | None:
  """``(kernel [D, C], bias [C])`` if ``params`` is one Dense layer, else ``None``.

  Accepts ``{"params": {"kernel", "bias"}}`` (an ``nn.Dense``) and the same
  nested under single keys (``{"params": {"Dense_0": {...}}}``, a
  :class:`~jaxmed.laplace.probes.LinearProbe`).
  """
  node = params
  while hasattr(node, "keys") and set(node.keys()) != {"kernel", "bias"} and len(node) == 1:
    node = node[next(iter(node.keys()))]
  if hasattr(node, "keys") and set(node.keys()) == {"kernel", "bias"} and node["kernel"].ndim == 2:
    return node["kernel"], node["bias"]
  return None


def kfac_probe_posterior(kernel: jax.Array, bias: jax.Array, features: jax.Array, *, likelihood: str,
                         prior_precision: float = 1.0, sigma: float = 1.0,
                         weights: jax.Array | None = None) -> KFACPosterior:
  """KFAC Laplace posterior of a linear probe at ``(kernel [D, C], bias [C])`` on ``features [N, D]``."""
  n = features.shape[0]
  w = jnp.ones((n,), features.dtype) if weights is None else jnp.asarray(weights, features.dtype)
  a_in = jnp.concatenate([features, jnp.ones((n, 1), features.dtype)], axis=1)
  h = output_hessian(features @ kernel + bias, likelihood, sigma)
  a = jnp.einsum("n,ni,nj->ij", w, a_in, a_in)
  g = jnp.einsum("n,ncd->cd", w, h) / jnp.sum(w)
  mean = jnp.concatenate([kernel, bias[None]], axis=0)
  return KFACPosterior(mean=mean, a=a, g=g, prior_precision=jnp.asarray(prior_precision, features.dtype))


def kl_kfac(p0: KFACPosterior, p1: KFACPosterior) -> dict[str, jax.Array]:
  """``KL(p0 || p1)`` for two KFAC posteriors, exact for the Kronecker structure.

  In ``p0``'s eigenbasis ``p1``'s precision has diagonal
  ``diag(U_A0^T A1 U_A0)_i diag(U_G0^T G1 U_G0)_j + delta``, which gives
  ``tr(Lambda1 Lambda0^-1)`` without forming either matrix. The Mahalanobis
  term is ``tr(D^T A1 D G1) + delta ||D||^2`` with ``D = M1 - M0``.
  Returns the total and the pieces as in :mod:`jaxmed.laplace.kl`.
  """
  alpha0, ua0 = jnp.linalg.eigh(p0.a)
  gamma0, ug0 = jnp.linalg.eigh(p0.g)
  lam0 = jnp.outer(alpha0, gamma0) + p0.prior_precision
  a1 = jnp.einsum("ji,jk,ki->i", ua0, p1.a, ua0)
  g1 = jnp.einsum("ji,jk,ki->i", ug0, p1.g, ug0)
  trace = jnp.sum((jnp.outer(a1, g1) + p1.prior_precision) / lam0) - lam0.size
  d = p1.mean - p0.mean
  maha = jnp.sum((p1.a @ d @ p1.g) * d) + p1.prior_precision * jnp.sum(d * d)
  logdet = jnp.sum(jnp.log(lam0)) - p1.log_det_precision()
  return {"kl": 0.5 * (trace + maha + logdet), "trace": trace, "mahalanobis": maha, "logdet": logdet}
