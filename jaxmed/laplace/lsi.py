"""Laplace Sample Information (Kaiser, Schwethelm, Rueckert, Kaissis; ICLR 2025).

  LSI(z_i) = KL( N(theta_hat, Sigma) || N(theta_hat_-i, Sigma_-i) ),

both Laplace posteriors; ``theta_hat_-i`` comes from exact retraining without
``z_i`` from the same initialisation. Retraining is a user-given pure
function ``fit_fn(init_params, sample_weights) -> params`` (e.g. an optax
loop in ``lax.fori_loop``); removing ``z_i`` is the weight mask
``w = 1 - e_i``, so all leave-one-out runs are one ``vmap``, processed in
chunks with ``lax.map`` to bound memory.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxmed.laplace.posterior import laplace, posterior_kl


def laplace_sample_information(fit_fn: Callable[[Any, jax.Array], Any], apply_fn: Callable, init_params: Any,
                               x: jax.Array, *, likelihood: str, structure: str = "diag",
                               prior_precision: float = 1.0, sigma: float = 1.0, indices: jax.Array | None = None,
                               chunk: int | None = None) -> dict[str, jax.Array]:
  """Exact leave-one-out LSI for the samples ``indices`` (default: all ``N``).

  Args:
    fit_fn: ``(init_params, weights[N]) -> params``; pure and vmap-able.
    apply_fn: ``(params, x) -> outputs`` (logits or regression outputs).
    init_params: the shared deterministic initialisation.
    x: ``[N, ...]`` inputs the curvature is computed on.
    likelihood, structure, prior_precision, sigma: as in :func:`laplace`.
    chunk: leave-one-out runs per vmapped chunk (``None``: all at once).

  Returns:
    ``lsi`` ``[M]`` and the KL pieces ``trace``, ``mahalanobis``, ``logdet`` ``[M]``.
  """
  n = x.shape[0]
  idx = jnp.arange(n) if indices is None else jnp.asarray(indices)
  ones = jnp.ones((n,), jnp.result_type(float))
  kw = dict(likelihood=likelihood, structure=structure, prior_precision=prior_precision, sigma=sigma)
  full = laplace(apply_fn, fit_fn(init_params, ones), x, weights=ones, **kw)

  def loo(i):
    w = ones.at[i].set(0.0)
    post = laplace(apply_fn, fit_fn(init_params, w), x, weights=w, **kw)
    return posterior_kl(full, post)

  out = jax.lax.map(loo, idx, batch_size=chunk) if chunk else jax.vmap(loo)(idx)
  return {"lsi": out["kl"], "trace": out["trace"], "mahalanobis": out["mahalanobis"], "logdet": out["logdet"]}
