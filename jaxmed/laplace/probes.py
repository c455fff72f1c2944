"""Probes on frozen features, and their deterministic full-batch training as a pure ``fit_fn``.

LSI is computed on a probe: a linear head (or a small MLP head) trained on
the frozen features ``phi [N, D]`` of a backbone. :func:`probe_fit_fn`
returns ``fit_fn(init_params, weights) -> params``, the MAP of

  sum_n w_n l(f(phi_n), y_n) + delta / 2 ||theta||^2

by ``steps`` full-batch Adam steps in a ``lax.fori_loop``: pure, jit- and
vmap-able, so all leave-one-out retrainings run as one vmap.

For the linear probe the objective is strictly convex and its Hessian is
exactly the GGN plus the prior, so :func:`linear_probe_newton_fit_fn` reaches
the unique optimum to machine precision in ~10 Newton steps; leave-one-out
differences then reflect the removed sample, not optimiser noise.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jax.flatten_util import ravel_pytree

from jaxmed.laplace.baselines import per_sample_loss
from jaxmed.laplace.curvature import linear_probe_ggn


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


_STEP_SIZES = tuple(2.0 ** -k for k in range(8))


def linear_probe_newton_fit_fn(apply_fn: Callable, features: jax.Array, labels: jax.Array, *,
                               prior_precision: float = 1.0, steps: int = 12,
                               tol: float | None = None) -> Callable[[Any, jax.Array], Any]:
  """``fit_fn(init_params, weights)`` for a :class:`LinearProbe`: damped Newton steps.

  Each step solves ``(G + delta I) s = grad`` with the closed-form GGN, which
  for softmax cross-entropy on a linear model is the exact Hessian, and moves
  by the step size in ``{1, 1/2, ..., 1/128}`` that lowers the objective most.
  ``tol=None`` runs exactly ``steps`` steps (``lax.fori_loop``); otherwise the
  loop (``lax.while_loop``) stops once the gradient's max-norm is below ``tol``,
  after at most ``steps`` steps, so a warm start near the optimum costs one or
  two factorisations.
  """
  def objective(p, w):
    return probe_objective(apply_fn, p, features, labels, w, prior_precision)

  def fit_fn(init_params, weights):
    dtype = jnp.promote_types(features.dtype, jnp.float32)  # float64 features keep the fit in float64
    flat0, unravel = ravel_pytree(jax.tree.map(lambda p: jnp.asarray(p, dtype), init_params))

    def grad_of(flat):
      return ravel_pytree(jax.grad(objective)(unravel(flat), weights))[0]

    def newton(flat, grad):
      params = unravel(flat)
      hess = linear_probe_ggn(features, apply_fn(params, features), likelihood="classification", weights=weights)
      hess = hess + prior_precision * jnp.eye(flat.shape[0], dtype=flat.dtype)
      step = jax.scipy.linalg.solve(hess, grad, assume_a="pos")
      # Pure Newton can overshoot far from the optimum; take the best of the step sizes 1, 1/2, ..., 1/128
      # (near the optimum that is the full step, so convergence stays quadratic).
      sizes = jnp.asarray(_STEP_SIZES, flat.dtype)
      values = jax.vmap(lambda t: objective(unravel(flat - t * step), weights))(sizes)
      return flat - sizes[jnp.argmin(values)] * step

    if tol is None:
      return unravel(jax.lax.fori_loop(0, steps, lambda _, f: newton(f, grad_of(f)), flat0))

    def cond(carry):
      k, _, grad = carry
      return (k < steps) & (jnp.max(jnp.abs(grad)) > tol)

    def body(carry):
      k, flat, grad = carry
      flat = newton(flat, grad)
      return k + 1, flat, grad_of(flat)

    return unravel(jax.lax.while_loop(cond, body, (0, flat0, grad_of(flat0)))[1])

  return fit_fn


def linear_probe_lbfgs_fit_fn(apply_fn: Callable, features: jax.Array, labels: jax.Array, *,
                              prior_precision: float = 1.0, steps: int = 500,
                              tol: float = 1e-6) -> Callable[[Any, jax.Array], Any]:
  """``fit_fn(init_params, weights)`` by L-BFGS (optax, zoom line search) until the gradient's max-norm is
  below ``tol`` or ``steps`` steps: for probes too wide for Newton's ``[P, P]`` solves (``P = (D+1) C`` in the
  thousands), each step costs one pass over the features."""
  tx = optax.lbfgs()

  def fit_fn(init_params, weights):
    value = lambda p: probe_objective(apply_fn, p, features, labels, weights, prior_precision)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(value)

    def cond(carry):
      k, _, state = carry
      grad = optax.tree_utils.tree_get(state, "grad")
      return (k < steps) & (optax.tree_utils.tree_max(jax.tree.map(jnp.abs, grad)) > tol)

    def body(carry):
      k, params, state = carry
      v, g = value_and_grad(params, state=state)
      updates, state = tx.update(g, state, params, value=v, grad=g, value_fn=value)
      return k + 1, optax.apply_updates(params, updates), state

    dtype = jnp.promote_types(features.dtype, jnp.float32)  # float64 features keep the fit in float64
    params = jax.tree.map(lambda p: jnp.asarray(p, dtype), init_params)
    state = tx.init(params)
    v, g = value_and_grad(params, state=state)
    state = optax.tree_utils.tree_set(state, value=v, grad=g)
    return jax.lax.while_loop(cond, body, (0, params, state))[1]

  return fit_fn
