"""Laplace Sample Information (Kaiser, Schwethelm, Rueckert, Kaissis; ICLR 2025).

  LSI(z_i) = KL( N(theta_hat, Sigma) || N(theta_hat_-i, Sigma_-i) ),

both Laplace posteriors; ``theta_hat_-i`` comes from exact retraining without
``z_i`` from the same initialisation. Retraining is a user-given pure
function ``fit_fn(init_params, sample_weights) -> params`` (e.g. an optax
loop in ``lax.fori_loop``); removing ``z_i`` is the weight mask
``w = 1 - e_i``, so all leave-one-out runs are one ``vmap``, processed in
chunks with ``lax.map`` to bound memory.

Two cheaper ways to get ``theta_hat_-i`` (``method``):

* ``"warm"``: retrain from ``theta_hat`` instead of the initialisation, or,
  when ``targets`` are given, from the one-Newton-step estimate below (for a
  linear probe the closed-form estimate); ``warm_fit_fn`` may run fewer steps,
  or stop at a gradient tolerance (:func:`~jaxmed.laplace.linear_probe_newton_fit_fn`
  with ``tol``). For a convex probe the optimum does not depend on the start,
  so a converged warm fit is the exact leave-one-out fit;
* ``"influence"``: one Newton step on the leave-one-out objective,
  ``theta_-i = theta_hat + (Lambda_-i)^-1 grad l_i(theta_hat)``, with
  ``Lambda_-i`` the leave-one-out Laplace precision at ``theta_hat`` (GGN,
  in the chosen structure). Exact for linear-Gaussian models.

For a linear probe (or a network's last layer on its features), ``"closed_form"`` gives every sample's LSI
from one factorisation of the full-GGN precision, without any retraining: the influence step with the
leave-one-out curvature taken at ``theta_hat`` (see :mod:`jaxmed.laplace.closed_form` for the derivation and
where it is exact).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jax.flatten_util import ravel_pytree

from jaxmed.laplace.closed_form import lsi_closed_form
from jaxmed.laplace.curvature import output_gradient
from jaxmed.laplace.posterior import laplace, posterior_kl

METHODS = ("exact", "warm", "influence", "closed_form")


def _check_precision(dtype, structures: Sequence[str], method: str) -> None:
  """The precision policy: the leave-one-out KL of a full or KFAC posterior is a small difference of large
  log-determinants and traces, which cancels catastrophically in float32 (1-15% error at P = 650). It runs in
  float64 (CPU and GPU have it; the official code uses long double) or not at all; ``closed_form`` sums
  non-negative terms and is stable in float32."""
  if method != "closed_form" and jnp.dtype(dtype) != jnp.float64 and any(s != "diag" for s in structures):
    raise ValueError(
        f"laplace_sample_information: structure {tuple(structures)} in {jnp.dtype(dtype).name} would lose the "
        "leave-one-out KL to cancellation (1-15% error at 650 parameters). Enable float64 "
        "(jax.config.update('jax_enable_x64', True), or `with jax.enable_x64(True):`, and float64 inputs), or use "
        "method='closed_form' (stable in float32) or structure='diag'.")


def loo_chunk(num_params: int, num_samples: int, structures: Sequence[str], memory_budget_gb: float,
              itemsize: int = 8) -> int:
  """Leave-one-out runs per vmapped chunk that fit ``memory_budget_gb`` (at least 1).

  One run holds its weights ``[N]``, its params and, per structure, a precision (``[P, P]`` full, ``[P]``
  diagonal; KFAC factors are counted as full) plus its Cholesky factor: about
  ``(N + P + 2 sum_s size_s) * itemsize`` bytes, with a factor 2 for the fit's temporaries.
  """
  per_structure = sum(num_params * num_params if s != "diag" else num_params for s in structures)
  per_run = 2 * (num_samples + num_params + 2 * per_structure) * itemsize
  return max(1, int(memory_budget_gb * 2**30 // per_run))


def laplace_sample_information(fit_fn: Callable[[Any, jax.Array], Any], apply_fn: Callable, init_params: Any,
                               x: jax.Array, *, likelihood: str, structure: str | Sequence[str] = "diag",
                               prior_precision: float = 1.0, sigma: float = 1.0, indices: jax.Array | None = None,
                               chunk: int | None = None, method: str = "exact", targets: jax.Array | None = None,
                               warm_fit_fn: Callable[[Any, jax.Array], Any] | None = None,
                               linear_probe: bool = False, memory_budget_gb: float = 2.0) -> dict[str, Any]:
  """Leave-one-out LSI for the samples ``indices`` (default: all ``N``).

  Args:
    fit_fn: ``(init_params, weights[N]) -> params``; pure and vmap-able.
    apply_fn: ``(params, x) -> outputs`` (logits or regression outputs).
    init_params: the shared deterministic initialisation.
    x: ``[N, ...]`` inputs the curvature is computed on.
    likelihood, prior_precision, sigma, linear_probe: as in :func:`laplace`.
    structure: ``"diag"``, ``"full"``, ``"kfac"``, or a sequence of them; a
      sequence shares the leave-one-out retrainings between structures.
    chunk: leave-one-out runs per vmapped chunk, run one chunk after another
      with ``lax.map``. ``None`` derives it from ``memory_budget_gb`` (see
      :func:`loo_chunk`); on CPU it is then 1: on XLA:CPU (jax 0.10.2) a
      vmapped batch of Cholesky/eigh calls parallelises over the batch on the
      intra-op thread pool, and two such calls running concurrently deadlocked
      on a 2-core machine; one sample per step keeps the LAPACK calls
      unbatched and lost ~10% speed there.
    memory_budget_gb: what the vmapped leave-one-out runs of one chunk may hold.
    method: ``"exact"``, ``"warm"``, ``"influence"`` or ``"closed_form"`` (see the module docstring;
      ``"influence"`` supports ``"diag"`` and ``"full"``; ``"closed_form"`` needs ``structure="full"``,
      ``linear_probe=True`` and ``targets``, and ignores ``chunk``).
    targets: labels ``[N]`` (classification) or targets (regression); needed
      for ``"influence"``.
    warm_fit_fn: the retraining used by ``"warm"`` (default ``fit_fn``).

  Returns:
    ``lsi`` ``[M]`` and the KL pieces ``trace``, ``mahalanobis``, ``logdet``
    ``[M]``; for a sequence of structures, one such dict per structure.
  """
  structures = (structure,) if isinstance(structure, str) else tuple(structure)
  n = x.shape[0]
  idx = jnp.arange(n) if indices is None else jnp.asarray(indices)
  ones = jnp.ones((n,), jnp.result_type(float))
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  if method == "influence" and targets is None:
    raise ValueError("method='influence' needs targets (the labels) for the per-sample gradient")
  if method == "influence" and "kfac" in structures:
    raise ValueError("method='influence' supports structure 'diag' and 'full'; use 'exact' or 'warm' for 'kfac'")

  _check_precision(jnp.result_type(x, *jax.tree.leaves(init_params)), structures, method)
  if method == "closed_form":
    if structures != ("full",) or not linear_probe or targets is None:
      raise ValueError("method='closed_form' is the full-GGN LSI of a linear probe: pass structure='full', "
                       f"linear_probe=True and targets; got structure={structure!r}, linear_probe={linear_probe}, "
                       f"targets={'given' if targets is not None else None}")
    theta_hat = fit_fn(init_params, ones)
    out = lsi_closed_form(x, apply_fn(theta_hat, x), targets, likelihood=likelihood,
                          prior_precision=prior_precision, sigma=sigma)
    out = {k: v[idx] for k, v in out.items() if k != "leverage"}
    return out if isinstance(structure, str) else {"full": out}

  def post(s, params, w):
    return laplace(apply_fn, params, x, likelihood=likelihood, structure=s, prior_precision=prior_precision,
                   sigma=sigma, weights=w, linear_probe=linear_probe and s != "kfac")

  theta_hat = fit_fn(init_params, ones)
  full = {s: post(s, theta_hat, ones) for s in structures}
  flat_hat, unravel = ravel_pytree(theta_hat)

  def newton_step(s, i, w):
    xi = jax.lax.dynamic_slice_in_dim(x, i, 1)
    yi = jax.lax.dynamic_slice_in_dim(targets, i, 1)
    out, vjp = jax.vjp(lambda p: apply_fn(p, xi), theta_hat)
    grad_i = ravel_pytree(vjp(output_gradient(out, yi, likelihood, sigma).astype(out.dtype))[0])[0]
    prec = post(s, theta_hat, w).precision
    step = grad_i / prec if s == "diag" else jnp.linalg.solve(prec, grad_i)
    return unravel(flat_hat + step)

  def loo(i):
    w = ones.at[i].set(0.0)
    if method == "exact":
      params = fit_fn(init_params, w)
    elif method == "warm":  # from the one-step (closed-form) estimate where the labels are given, else theta_hat
      start = newton_step("full" if linear_probe else "diag", i, w) if targets is not None else theta_hat
      params = (warm_fit_fn or fit_fn)(start, w)
    out = {}
    for s in structures:
      p = newton_step(s, i, w) if method == "influence" else params
      out[s] = posterior_kl(full[s], post(s, p, w))
    return out

  if chunk is None:
    chunk = loo_chunk(ravel_pytree(init_params)[0].size, n, structures, memory_budget_gb,
                      jnp.result_type(float).itemsize)
    chunk = 1 if jax.default_backend() == "cpu" else min(chunk, idx.shape[0])
  if chunk:  # pad to whole chunks (repeating the first index) so one compiled body serves every chunk
    m = idx.shape[0]
    padded = jnp.concatenate([idx, jnp.broadcast_to(idx[:1], ((-m) % chunk,))])
    out = jax.tree.map(lambda a: a[:m], jax.lax.map(loo, padded, batch_size=chunk))
  else:
    out = jax.vmap(loo)(idx)
  out = {s: {"lsi": o["kl"], "trace": o["trace"], "mahalanobis": o["mahalanobis"], "logdet": o["logdet"]}
         for s, o in out.items()}
  return out[structure] if isinstance(structure, str) else out
