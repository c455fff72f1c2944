"""Integrated Gradients (Sundararajan et al., 2017) over node features.

``IG_k(x) = (x_k - x'_k) * integral_0^1 d f(x' + a (x - x')) / d x_k da``,
approximated with the trapezoid rule on ``steps`` intervals (``steps + 1``
gradient evaluations, vmapped). Completeness: ``sum_k IG_k = f(x) - f(x')``
up to the quadrature error; exact for a linear ``f``. For a graph model ``x``
is the node-feature matrix ``[N, F]``: summing over features gives per-node
(region) attributions, summing over real nodes gives per-feature ones.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def integrated_gradients(f: Callable[[jax.Array], jax.Array], x: jax.Array, baseline: jax.Array, *,
                         steps: int = 64) -> jax.Array:
  """Attributions with the shape of ``x``; ``f`` maps an array like ``x`` to a scalar."""
  alphas = jnp.linspace(0.0, 1.0, steps + 1)
  weights = jnp.full((steps + 1,), 1.0 / steps).at[0].set(0.5 / steps).at[-1].set(0.5 / steps)
  grad = jax.grad(f)
  grads = jax.vmap(lambda a: grad(baseline + a * (x - baseline)))(alphas)
  return (x - baseline) * jnp.tensordot(weights, grads, axes=1)
