"""KFAC Laplace of every Dense layer of a Flax network, with per-layer Kronecker factors, the prior and the
exact log-determinant (laplace-torch's ``KronLaplace`` conventions, checked against it in
``tests/laplace/test_kfac_layers.py``).

For a Dense layer ``s_n = a_n W + b`` (input ``a_n [d_in]``, output ``s_n [d_out]``) and ``J_n = d f_n / d s_n``
(``[C, d_out]``, the network after the layer), the layer's GGN block is
``sum_n (a_n a_n^T) (x) (J_n^T H_n J_n)``. KFAC ("expand") replaces the sum of products by a product of sums:

  A = (1/N) sum_n w_n a_n a_n^T        (the input factor, ``[d_in, d_in]``),
  B = sum_n w_n J_n^T H_n J_n          (the output factor, ``[d_out, d_out]``),

so the kernel block (Flax layout ``[d_in, d_out]``, flattened ``i * d_out + o``) is ``A (x) B`` and the bias
block is ``B`` itself (exact: the bias Jacobian is the identity). Layers are independent blocks; the prior
``delta I`` is added to each block's eigenvalues (``alpha_i beta_j + delta`` and ``beta_j + delta``), so the
log-determinant is exact for this structure. ``N = sum_n w_n``.

The Laplace log marginal likelihood (as laplace-torch computes it, prior mean 0):

  log p(D) ~ log p(D | theta) - 1/2 [log det P - P log delta + delta ||theta||^2].
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jaxmed.laplace.baselines import per_sample_loss
from jaxmed.laplace.curvature import output_hessian
from jaxmed.laplace.kfac import KFACPosterior, kl_kfac
from jaxmed.laplace.kl import kl_full


@flax.struct.dataclass
class LayerFactors:
  """One Dense layer's KFAC factors: ``a [d_in, d_in]``, ``b [d_out, d_out]``; ``path`` names the module."""
  a: jax.Array
  b: jax.Array
  path: tuple = flax.struct.field(pytree_node=False)

  def log_det(self, prior_precision) -> jax.Array:
    """``log det`` of the kernel block ``A (x) B + delta I`` plus the bias block ``B + delta I``."""
    alpha, beta = jnp.linalg.eigvalsh(self.a), jnp.linalg.eigvalsh(self.b)
    return jnp.sum(jnp.log(jnp.outer(alpha, beta) + prior_precision)) + jnp.sum(jnp.log(beta + prior_precision))


def _dense_run(apply_fn: Callable, params: Any, x: jax.Array, perturb: dict | None):
  """``(outputs, {path: input})`` with ``perturb[path]`` added to each Dense layer's output."""
  inputs = {}

  def intercept(next_fun, args, kwargs, context):
    if not isinstance(context.module, nn.Dense) or context.method_name != "__call__":
      return next_fun(*args, **kwargs)
    path = tuple(context.module.path)
    inputs[path] = args[0]
    out = next_fun(*args, **kwargs)
    return out if perturb is None else out + perturb[path]

  with nn.intercept_methods(intercept):
    out = apply_fn(params, x)
  return out, inputs


def layer_factors(apply_fn: Callable, params: Any, x: jax.Array, *, likelihood: str, sigma: float = 1.0,
                  weights: jax.Array | None = None) -> list[LayerFactors]:
  """KFAC factors of every ``nn.Dense`` in the network, in call order.

  Args:
    apply_fn: ``(params, x) -> outputs [N, C]`` of a Flax module built from ``nn.Dense`` layers (and any
      parameter-free operations between them); each Dense must see inputs ``[N, d_in]``.
    x: ``[N, ...]`` inputs; weights: ``[N]`` per-sample weights (0 drops a sample; default 1).
  """
  n = x.shape[0]
  w = jnp.ones((n,), x.dtype) if weights is None else jnp.asarray(weights, x.dtype)
  outputs, inputs = _dense_run(apply_fn, params, x, None)
  for path, v in inputs.items():
    if v.ndim != 2:
      raise ValueError(f"layer_factors: Dense {'/'.join(path)} sees inputs of shape {v.shape}; KFAC here needs "
                       "[N, d_in] (one token per sample)")
  kernels = {p: _kernel(params, p) for p in inputs}
  zero = {p: jnp.zeros((1, k.shape[1]), x.dtype) for p, k in kernels.items()}

  def jac_one(xn):  # d f / d s_l for one sample: {path: [C, d_out]}
    jac = jax.jacrev(lambda d: _dense_run(apply_fn, params, xn[None], d)[0][0])(zero)
    return {p: j[:, 0, :] for p, j in jac.items()}

  jac = jax.vmap(jac_one)(x)
  h = output_hessian(outputs, likelihood, sigma).astype(x.dtype)
  out = []
  for path in inputs:
    a_in = inputs[path]
    a = jnp.einsum("n,ni,nj->ij", w, a_in, a_in) / jnp.sum(w)
    b = jnp.einsum("n,nco,ncd,ndp->op", w, jac[path], h, jac[path])
    out.append(LayerFactors(a=a, b=b, path=path))
  return out


def _kernel(params: Any, path: tuple) -> jax.Array:
  return _node(params, path)["kernel"]


def kfac_log_det_precision(factors: list[LayerFactors], prior_precision: float) -> jax.Array:
  """``log det P`` of the block-diagonal KFAC posterior precision (every Dense kernel and bias)."""
  return sum(f.log_det(prior_precision) for f in factors)


def kfac_log_marginal_likelihood(apply_fn: Callable, params: Any, x: jax.Array, labels: jax.Array,
                                 factors: list[LayerFactors], prior_precision: float) -> jax.Array:
  """Laplace log marginal likelihood of a softmax classifier at its MAP ``params`` under the KFAC posterior.

  Every parameter must belong to a Dense layer in ``factors`` (the prior counts all of them).
  """
  leaves = jax.tree.leaves(params)
  num_params = sum(p.size for p in leaves)
  counted = sum(f.a.shape[0] * f.b.shape[0] + f.b.shape[0] for f in factors)
  if counted != num_params:
    raise ValueError(f"kfac_log_marginal_likelihood: the Dense layers hold {counted} of the {num_params} "
                     "parameters; every parameter needs a KFAC block")
  log_lik = -jnp.sum(per_sample_loss(apply_fn(params, x), labels))
  scatter = prior_precision * sum(jnp.sum(p * p) for p in leaves)
  log_det_ratio = kfac_log_det_precision(factors, prior_precision) - num_params * jnp.log(prior_precision)
  return log_lik - 0.5 * (log_det_ratio + scatter)


@flax.struct.dataclass
class KFACNetworkPosterior:
  """Block-diagonal KFAC posterior of a network's Dense layers: per layer the kernel ``[d_in, d_out]`` with
  precision ``A (x) B + delta I`` and the bias ``[d_out]`` with ``B + delta I``."""
  kernels: tuple
  biases: tuple
  factors: tuple
  prior_precision: jax.Array

  def log_det_precision(self) -> jax.Array:
    return kfac_log_det_precision(list(self.factors), self.prior_precision)


def kfac_network_posterior(apply_fn: Callable, params: Any, x: jax.Array, *, likelihood: str,
                           prior_precision: float = 1.0, sigma: float = 1.0,
                           weights: jax.Array | None = None) -> KFACNetworkPosterior:
  """The KFAC Laplace posterior at ``params`` (every parameter must sit in a Dense layer with a bias)."""
  factors = layer_factors(apply_fn, params, x, likelihood=likelihood, sigma=sigma, weights=weights)
  nodes = [_node(params, f.path) for f in factors]
  counted = sum(n["kernel"].size + n["bias"].size for n in nodes if "bias" in n)
  if any("bias" not in n for n in nodes) or counted != sum(p.size for p in jax.tree.leaves(params)):
    raise ValueError("kfac_network_posterior: every parameter must belong to an nn.Dense layer with a bias "
                     f"(found Dense layers {['/'.join(f.path) or '<root>' for f in factors]})")
  return KFACNetworkPosterior(kernels=tuple(n["kernel"] for n in nodes), biases=tuple(n["bias"] for n in nodes),
                              factors=tuple(factors), prior_precision=jnp.asarray(prior_precision, x.dtype))


def _node(params: Any, path: tuple) -> dict:
  node = params["params"]
  for key in path:
    node = node[key]
  return node


def kl_kfac_network(p0: KFACNetworkPosterior, p1: KFACNetworkPosterior) -> dict[str, jax.Array]:
  """``KL(p0 || p1)``: the sum over layers of the kernel blocks' Kronecker KLs and the bias blocks' KLs."""
  total = {"kl": 0.0, "trace": 0.0, "mahalanobis": 0.0, "logdet": 0.0}
  for k0, b0, f0, k1, b1, f1 in zip(p0.kernels, p0.biases, p0.factors, p1.kernels, p1.biases, p1.factors):
    eye = jnp.eye(f0.b.shape[0], dtype=f0.b.dtype)
    parts = (kl_kfac(KFACPosterior(k0, f0.a, f0.b, p0.prior_precision),
                     KFACPosterior(k1, f1.a, f1.b, p1.prior_precision)),
             kl_full(b0, f0.b + p0.prior_precision * eye, b1, f1.b + p1.prior_precision * eye))
    for part in parts:
      total = {k: total[k] + part[k] for k in total}
  return total
