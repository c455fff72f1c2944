"""Laplace posterior ``N(theta_hat, (G + delta I)^-1)`` with a full or diagonal GGN ``G``.

``delta`` is the prior precision (an isotropic Gaussian prior ``N(0, delta^-1 I)``;
1.0 by default, as in the LSI paper).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxmed.laplace.curvature import ggn_diagonal, ggn_matrix, linear_probe_ggn
from jaxmed.laplace.kfac import KFACPosterior, dense_probe_params, kfac_probe_posterior, kl_kfac
from jaxmed.laplace.kfac_layers import KFACNetworkPosterior, kfac_network_posterior, kl_kfac_network
from jaxmed.laplace.kl import kl_diagonal, kl_full

STRUCTURES = ("diag", "full", "kfac")


@flax.struct.dataclass
class LaplacePosterior:
  """``mean`` ``[P]`` (flattened params); ``precision`` ``[P]`` (diag) or ``[P, P]`` (full)."""
  mean: jax.Array
  precision: jax.Array
  structure: str = flax.struct.field(pytree_node=False)

  def log_det_precision(self) -> jax.Array:
    if self.structure == "diag":
      return jnp.sum(jnp.log(self.precision))
    return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(self.precision))))

  def sample(self, rng: jax.Array, n: int) -> jax.Array:
    """``n`` draws of the flattened params: ``[n, P]``."""
    eps = jax.random.normal(rng, (n,) + self.mean.shape, self.mean.dtype)
    if self.structure == "diag":
      return self.mean + eps / jnp.sqrt(self.precision)
    chol = jnp.linalg.cholesky(self.precision)  # Lambda = L L^T, so theta = mu + L^-T eps
    return self.mean + jax.scipy.linalg.solve_triangular(chol.T, eps.T, lower=False).T


def laplace(apply_fn: Callable, params: Any, x: jax.Array, *, likelihood: str, structure: str = "diag",
            prior_precision: float = 1.0, sigma: float = 1.0, weights: jax.Array | None = None,
            chunk: int | None = None, linear_probe: bool = False) -> LaplacePosterior | KFACPosterior:
  """Laplace approximation at ``params`` (the MAP) on inputs ``x`` (``[N, ...]``).

  ``weights`` ``[N]`` weight the data terms (0 drops a sample).
  ``structure="kfac"``: for a linear probe (``params`` one Flax ``Dense``
  layer, see :func:`~jaxmed.laplace.kfac.dense_probe_params`) the probe's
  KFAC with the bias folded in (:mod:`jaxmed.laplace.kfac`); for any other
  network of ``nn.Dense`` layers, per-layer Kronecker factors
  (:mod:`jaxmed.laplace.kfac_layers`, laplace-torch's convention).
  ``linear_probe=True`` declares the same for ``"diag"``/``"full"`` and uses
  the closed-form GGN :func:`~jaxmed.laplace.curvature.linear_probe_ggn`
  (same numbers as the generic path, far fewer flops).
  """
  if structure == "kfac" and dense_probe_params(params) is None:   # a network: per-layer Kronecker factors
    return kfac_network_posterior(apply_fn, params, x, likelihood=likelihood, prior_precision=prior_precision,
                                  sigma=sigma, weights=weights)
  if structure == "kfac" or linear_probe:
    dense = dense_probe_params(params)
    if dense is None or x.ndim != 2:
      raise ValueError(f"laplace(structure={structure!r}, linear_probe={linear_probe}) needs a linear probe: one "
                       "Dense layer's {'kernel', 'bias'} params and features [N, D]; got params "
                       f"{jax.tree.map(jnp.shape, params)} and x of shape {x.shape}")
  if structure == "kfac":
    return kfac_probe_posterior(*dense, x, likelihood=likelihood, prior_precision=prior_precision, sigma=sigma,
                                weights=weights)
  mean, _ = ravel_pytree(params)
  kw = dict(likelihood=likelihood, sigma=sigma, weights=weights)
  if linear_probe and structure in ("diag", "full"):
    ggn = linear_probe_ggn(x, apply_fn(params, x), diagonal=structure == "diag", **kw)
    prior = prior_precision if structure == "diag" else prior_precision * jnp.eye(mean.shape[0], dtype=mean.dtype)
    return LaplacePosterior(mean=mean, precision=ggn + prior, structure=structure)
  if structure == "diag":
    prec = ggn_diagonal(apply_fn, params, x, chunk=chunk, **kw) + prior_precision
  elif structure == "full":
    prec = ggn_matrix(apply_fn, params, x, **kw) + prior_precision * jnp.eye(mean.shape[0], dtype=mean.dtype)
  else:
    raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
  return LaplacePosterior(mean=mean, precision=prec, structure=structure)


def posterior_kl(p0, p1) -> dict[str, jax.Array]:
  """``KL(p0 || p1)`` and its pieces (see :mod:`jaxmed.laplace.kl`)."""
  if isinstance(p0, KFACPosterior) and isinstance(p1, KFACPosterior):
    return kl_kfac(p0, p1)
  if isinstance(p0, KFACNetworkPosterior) and isinstance(p1, KFACNetworkPosterior):
    return kl_kfac_network(p0, p1)
  if isinstance(p0, KFACPosterior) or isinstance(p1, KFACPosterior) or p0.structure != p1.structure:
    raise ValueError(f"posterior_kl: structures differ ({type(p0).__name__} vs {type(p1).__name__})")
  fn = kl_diagonal if p0.structure == "diag" else kl_full
  return fn(p0.mean, p0.precision, p1.mean, p1.precision)
