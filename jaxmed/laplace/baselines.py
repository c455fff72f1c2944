"""Per-sample informativeness baselines that LSI is compared with.

* loss: the per-sample negative log-likelihood;
* EL2N (Paul et al. 2021): ``|| softmax(f_n) - onehot(y_n) ||_2``;
* GraNd (Paul et al. 2021): ``|| grad_theta l_n ||_2``;
* data maps (Swayamdipta et al. 2020): confidence and variability, the mean
  and standard deviation over training epochs of the probability of the
  true label;
* self-influence (Koh & Liang 2017): ``g_n^T H^-1 g_n`` with the Laplace
  precision ``H`` (full or diagonal) at the trained params.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxmed.laplace.curvature import output_gradient


def per_sample_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Softmax cross-entropy per sample: ``[N, C], [N] -> [N]``."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]


def el2n(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Error L2-norm: ``||softmax(f_n) - onehot(y_n)||_2``, ``[N]``."""
  return jnp.linalg.norm(output_gradient(logits, labels, "classification"), axis=-1)


def per_sample_gradients(apply_fn: Callable, params: Any, x: jax.Array, labels: jax.Array) -> jax.Array:
  """Flattened gradients of each sample's cross-entropy: ``[N, P]``."""
  flat, unravel = ravel_pytree(params)

  def one(xn, yn):
    return jax.grad(lambda t: per_sample_loss(apply_fn(unravel(t), xn[None]), yn[None])[0])(flat)

  return jax.vmap(one)(x, labels)


def grand(apply_fn: Callable, params: Any, x: jax.Array, labels: jax.Array) -> jax.Array:
  """Gradient norm of each sample's loss, ``[N]``."""
  return jnp.linalg.norm(per_sample_gradients(apply_fn, params, x, labels), axis=-1)


def data_map(true_label_probs: jax.Array) -> dict[str, jax.Array]:
  """Confidence and variability from ``[E, N]`` true-label probabilities over ``E`` epochs."""
  return {"confidence": jnp.mean(true_label_probs, axis=0), "variability": jnp.std(true_label_probs, axis=0)}


def self_influence(apply_fn: Callable, params: Any, x: jax.Array, labels: jax.Array, precision: jax.Array) -> jax.Array:
  """``g_n^T H^-1 g_n`` per sample; ``precision`` is ``[P]`` (diagonal) or ``[P, P]``."""
  g = per_sample_gradients(apply_fn, params, x, labels)
  if precision.ndim == 1:
    return jnp.sum(g * g / precision, axis=1)
  return jnp.sum(g * jnp.linalg.solve(precision, g.T).T, axis=1)
