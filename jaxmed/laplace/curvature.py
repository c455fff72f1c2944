"""Generalised Gauss-Newton (GGN) curvature of a model's loss, as functions of ``apply(params, x)``.

For outputs ``f_n = f(theta, x_n)`` (``[C]`` per sample) and a likelihood whose
Hessian with respect to the outputs is ``H_n`` (``[C, C]``), the GGN is

  G = sum_n J_n^T H_n J_n,      J_n = d f_n / d theta   (``[C, P]``).

Likelihoods:

* ``"classification"``: softmax cross-entropy on logits, ``H_n = diag(p_n) - p_n p_n^T``;
* ``"regression"``: Gaussian with noise std ``sigma``, ``H_n = I / sigma^2``.

``params`` may be any pytree; matrices and diagonals are over the flattened
parameter vector (``jax.flatten_util.ravel_pytree`` order). The prior adds
``delta * I`` (prior precision ``delta``) separately, in the posterior.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

ApplyFn = Callable[[Any, jax.Array], jax.Array]
LIKELIHOODS = ("classification", "regression")


def output_hessian(outputs: jax.Array, likelihood: str, sigma: float = 1.0) -> jax.Array:
  """``H_n``, the Hessian of the negative log-likelihood in the outputs: ``[N, C]`` -> ``[N, C, C]``."""
  if likelihood == "classification":
    p = jax.nn.softmax(outputs.astype(jnp.promote_types(outputs.dtype, jnp.float32)), axis=-1)  # bf16 -> f32; f64 kept
    return jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :]
  if likelihood == "regression":
    eye = jnp.eye(outputs.shape[-1], dtype=outputs.dtype) / sigma**2
    return jnp.broadcast_to(eye, (outputs.shape[0],) + eye.shape)
  raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def output_gradient(outputs: jax.Array, targets: jax.Array, likelihood: str, sigma: float = 1.0) -> jax.Array:
  """Gradient of the negative log-likelihood in the outputs, ``[N, C]``.

  Classification: ``softmax(f) - onehot(y)`` (``targets`` are ``[N]`` class
  indices). Regression: ``(f - y) / sigma^2`` (``targets`` shaped like ``outputs``).
  """
  if likelihood == "classification":
    return jax.nn.softmax(outputs, axis=-1) - jax.nn.one_hot(targets, outputs.shape[-1], dtype=outputs.dtype)
  if likelihood == "regression":
    return (outputs - targets.reshape(outputs.shape)) / sigma**2
  raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def _flat_apply(apply_fn: ApplyFn, params: Any):
  flat, unravel = ravel_pytree(params)

  def f(theta, x):  # one sample: x [...] -> outputs [C]
    out = apply_fn(unravel(theta), x[None])
    return out.reshape(-1)

  return flat, f


def per_sample_jacobians(apply_fn: ApplyFn, params: Any, x: jax.Array) -> jax.Array:
  """``J_n = d f(theta, x_n) / d theta`` for every sample: ``[N, C, P]`` (small models only)."""
  flat, f = _flat_apply(apply_fn, params)
  return jax.vmap(lambda xn: jax.jacrev(f)(flat, xn))(x)


def _weights(weights, n, dtype):
  return jnp.ones((n,), dtype) if weights is None else jnp.asarray(weights, dtype)


def ggn_matrix(apply_fn: ApplyFn, params: Any, x: jax.Array, *, likelihood: str, sigma: float = 1.0,
               weights: jax.Array | None = None) -> jax.Array:
  """Full GGN ``sum_n w_n J_n^T H_n J_n``: ``[P, P]`` (for small parameter counts).

  ``weights`` ``[N]`` (default 1) weight each sample's term; a 0 removes the
  sample, which is how leave-one-out posteriors are built under ``vmap``.
  """
  jac = per_sample_jacobians(apply_fn, params, x)
  h = output_hessian(jax.vmap(lambda xn: apply_fn(params, xn[None]).reshape(-1))(x), likelihood, sigma)
  w = _weights(weights, x.shape[0], jac.dtype)
  return jnp.einsum("n,ncp,ncd,ndq->pq", w, jac, h, jac)


def ggn_diagonal(apply_fn: ApplyFn, params: Any, x: jax.Array, *, likelihood: str, sigma: float = 1.0,
                 chunk: int | None = None, weights: jax.Array | None = None) -> jax.Array:
  """Exact diagonal of the GGN: ``diag_p = sum_n w_n sum_cd J_ncp H_ncd J_ndp``, ``[P]``.

  ``chunk`` processes samples in chunks (``lax.map``) so ``N x C x P``
  Jacobians need not fit in memory at once. ``weights`` as in :func:`ggn_matrix`.
  """
  flat, f = _flat_apply(apply_fn, params)

  def one(xn):
    jn = jax.jacrev(f)(flat, xn)  # [C, P]
    hn = output_hessian(f(flat, xn)[None], likelihood, sigma)[0]
    return jnp.einsum("cp,cd,dp->p", jn, hn, jn)

  per_sample = jax.lax.map(one, x, batch_size=chunk) if chunk else jax.vmap(one)(x)
  return jnp.einsum("n,np->p", _weights(weights, x.shape[0], per_sample.dtype), per_sample)


def ggn_vector_product(apply_fn: ApplyFn, params: Any, x: jax.Array, vector: Any, *, likelihood: str,
                       sigma: float = 1.0) -> Any:
  """``G v`` without forming ``G``: one jvp, the output Hessian, one vjp.

  ``vector`` has the structure of ``params``; so does the result.
  """
  fn = lambda p: apply_fn(p, x)  # noqa: E731  [N, C]
  outputs, jv = jax.jvp(fn, (params,), (vector,))
  h = output_hessian(outputs, likelihood, sigma)
  hjv = jnp.einsum("ncd,nd->nc", h, jv)
  _, vjp = jax.vjp(fn, params)
  return vjp(hjv.astype(outputs.dtype))[0]


def probe_ggn_blocks(a: jax.Array, h: jax.Array, chunk: int | None = None) -> jax.Array:
  """``sum_n (a_n a_n^T) (x) H_n`` as blocks ``[D+1, C, D+1, C]``: ``a [N, D+1]``, ``h [N, C, C]``.

  Samples go in chunks of ``chunk`` (default: all), so the intermediates are ``[chunk, D+1, C, C]`` and
  never ``[N, D+1, D+1]``: memory ``O(chunk D C^2 + (D C)^2)``.
  """
  n, d = a.shape
  c = h.shape[-1]
  chunk = n if not chunk else int(chunk)
  g = jnp.zeros((d, c, d, c), a.dtype)
  for s in range(0, n, chunk):
    ah = a[s:s + chunk, :, None, None] * h[s:s + chunk, None]          # [chunk, D+1, C, C]
    g = g + jnp.einsum("nicd,nj->icjd", ah, a[s:s + chunk])
  return g


def probe_chunk(dim: int, num_outputs: int, memory_budget_gb: float, itemsize: int) -> int:
  """Samples per chunk so that ``[chunk, D+1, C, C]`` intermediates (three live at once) fit the budget."""
  return max(1, int(memory_budget_gb * 2**30 // (3 * dim * num_outputs * num_outputs * itemsize)))


def linear_probe_ggn(features: jax.Array, logits: jax.Array, *, likelihood: str, sigma: float = 1.0,
                     weights: jax.Array | None = None, diagonal: bool = False,
                     memory_budget_gb: float = 0.5) -> jax.Array:
  """Closed-form GGN of a linear probe ``logits = phi @ kernel + bias``, without Jacobians.

  With ``a_n = [1, phi_n]`` the probe's Jacobian is ``a_n^T (x) I_C``, so
  ``G = sum_n w_n (a_n a_n^T) (x) H_n``. The parameter order is
  ``ravel_pytree`` of Flax's ``{"params": {"bias", "kernel"}}``: the ``C``
  bias entries, then the kernel ``[D, C]`` row-major, i.e. index ``i * C + c``
  for row ``i`` of ``[bias; kernel]``.

  Args:
    features: ``phi`` ``[N, D]``; logits: ``[N, C]`` at the current params.
    diagonal: return only ``diag(G)`` ``[(D+1) C]``; else ``G`` ``[(D+1) C, (D+1) C]``.
    memory_budget_gb: bounds the per-chunk intermediates of the full GGN (:func:`probe_ggn_blocks`).

  Costs ``O(N D^2 C^2)`` (``O(N D C)`` for the diagonal) instead of the
  ``O(N C P^2)`` of the generic Jacobian product.
  """
  n, c = logits.shape
  a = jnp.concatenate([jnp.ones((n, 1), features.dtype), features], axis=1)
  h = output_hessian(logits, likelihood, sigma).astype(features.dtype)
  w = _weights(weights, n, features.dtype)
  if diagonal:
    return jnp.einsum("n,ni,nc->ic", w, a * a, jnp.diagonal(h, axis1=1, axis2=2)).reshape(-1)
  chunk = probe_chunk(a.shape[1], c, memory_budget_gb, a.dtype.itemsize)
  g = probe_ggn_blocks(a, w[:, None, None] * h, chunk)
  return g.reshape(a.shape[1] * c, a.shape[1] * c)
