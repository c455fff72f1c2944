"""Integrated Gradients (Sundararajan et al., 2017) for any differentiable scalar function of an array.

``IG_k(x) = (x_k - x'_k) * integral_0^1 d f(x' + a (x - x')) / d x_k da``,
approximated with ``steps`` gradient evaluations (vmapped). Completeness:
``sum_k IG_k = f(x) - f(x')`` up to the quadrature error; exact for a linear
``f``. ``method``: ``"gauss_legendre"`` (default; ``steps`` Gauss-Legendre
nodes on [0, 1], far smaller error for smooth networks at the same cost),
``"trapezoid"`` (``steps`` intervals, ``steps + 1`` evaluations) or
``"riemann_middle"`` (Captum's default family). Used on node features of
WSI graphs (``x [N, F]``: sum over features for per-region attributions) and
on EEG windows (``x [C, T]``: sum of ``|IG|`` over time for per-channel relevance).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def ig_quadrature(steps: int, method: str = "gauss_legendre") -> tuple[np.ndarray, np.ndarray]:
  """Nodes ``alpha`` in [0, 1] and weights (summing to 1) of the path integral."""
  if method == "gauss_legendre":
    x, w = np.polynomial.legendre.leggauss(steps)
    return (x + 1) / 2, w / 2
  if method == "trapezoid":
    w = np.full(steps + 1, 1.0 / steps)
    w[[0, -1]] = 0.5 / steps
    return np.linspace(0.0, 1.0, steps + 1), w
  if method == "riemann_middle":
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
  raise ValueError(f"integrated_gradients: method must be gauss_legendre, trapezoid or riemann_middle; got {method!r}")


def integrated_gradients(f: Callable[[jax.Array], jax.Array], x: jax.Array, baseline: jax.Array, *,
                         steps: int = 64, method: str = "gauss_legendre") -> jax.Array:
  """Attributions with the shape of ``x``; ``f`` maps an array like ``x`` to a scalar."""
  alphas, weights = ig_quadrature(steps, method)
  grad = jax.grad(f)
  grads = jax.vmap(lambda a: grad(baseline + a * (x - baseline)))(jnp.asarray(alphas, x.dtype))
  return (x - baseline) * jnp.tensordot(jnp.asarray(weights, x.dtype), grads, axes=1)
