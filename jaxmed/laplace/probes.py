"""Probes on frozen features, and their deterministic full-batch training as a pure ``fit_fn``.

LSI is computed on a probe: a linear head (or a small MLP head) trained on
the frozen features ``phi [N, D]`` of a backbone. :func:`probe_fit_fn`
returns ``fit_fn(init_params, weights) -> params``, the MAP of

  sum_n w_n l(f(phi_n), y_n) + delta / 2 ||theta||^2

by ``steps`` full-batch Adam steps in a ``lax.fori_loop``: pure, jit- and
vmap-able, so all leave-one-out retrainings run as one vmap.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmed.laplace.baselines import per_sample_loss


class LinearProbe(nn.Module):
  """``logits = phi W + b``: ``[N, D] -> [N, C]``."""
  num_classes: int

  @nn.compact
  def __call__(self, phi):
    return nn.Dense(self.num_classes)(phi)


class MLPProbe(nn.Module):
  """Two-layer head: ``Dense(hidden) -> GELU -> Dense(C)``."""
  num_classes: int
  hidden: int = 64

  @nn.compact
  def __call__(self, phi):
    return nn.Dense(self.num_classes)(nn.gelu(nn.Dense(self.hidden)(phi)))


def probe_objective(apply_fn: Callable, params: Any, features: jax.Array, labels: jax.Array, weights: jax.Array,
                    prior_precision: float) -> jax.Array:
  """``sum_n w_n CE_n + delta/2 ||theta||^2`` (a sum, matching the GGN's sum over samples)."""
  nll = per_sample_loss(apply_fn(params, features), labels)
  sq = sum(jnp.sum(p * p) for p in jax.tree.leaves(params))
  return jnp.sum(weights * nll) + 0.5 * prior_precision * sq


def probe_fit_fn(apply_fn: Callable, features: jax.Array, labels: jax.Array, *, prior_precision: float = 1.0,
                 steps: int = 300, lr: float = 0.05) -> Callable[[Any, jax.Array], Any]:
  """``fit_fn(init_params, weights)``: ``steps`` full-batch Adam steps on :func:`probe_objective`."""
  tx = optax.adam(lr)
  grad = jax.grad(lambda p, w: probe_objective(apply_fn, p, features, labels, w, prior_precision))

  def fit_fn(init_params, weights):
    def body(_, carry):
      params, opt_state = carry
      updates, opt_state = tx.update(grad(params, weights), opt_state, params)
      return optax.apply_updates(params, updates), opt_state

    params, _ = jax.lax.fori_loop(0, steps, body, (init_params, tx.init(init_params)))
    return params

  return fit_fn
