"""All-sample LSI in closed form for a linear probe (or the last layer of any network), without retraining.

Setting. A probe ``f(x_n) = W^T a_n`` with ``a_n = [1, phi_n]`` (``[D+1]``, the bias first, as in
:func:`~jaxmed.laplace.curvature.linear_probe_ggn`) and ``C`` outputs; parameters ``P = (D+1) C`` flattened as
``i * C + c``. For a deep network, ``phi`` are its penultimate features and ``W`` its last Dense layer
(last-layer Laplace). At the MAP ``theta_hat`` the full-GGN Laplace precision is

  Lambda = sum_n U_n U_n^T + delta I,        U_n = a_n (x) S_n   ([P, C]),   S_n S_n^T = H_n,

with ``H_n`` the output Hessian of the negative log-likelihood (softmax: ``diag(p) - p p^T``; Gaussian:
``I / sigma^2``) and ``g_n = a_n (x) r_n`` the per-sample gradient (``r_n = p_n - onehot(y_n)`` or
``(f_n - y_n) / sigma^2``).

Leave-one-out posterior. Dropping sample ``i`` removes its term from the objective. At ``theta_hat`` the
full objective's gradient is zero, so the leave-one-out objective's gradient is ``-g_i`` and its GGN is
``Lambda_-i = Lambda - U_i U_i^T``. One Newton step gives the leave-one-out mean
``theta_-i = theta_hat + Lambda_-i^-1 g_i``, and the leave-one-out posterior is ``N(theta_-i, Lambda_-i^-1)``.

The KL. With ``M_i = U_i^T Lambda^-1 U_i`` (``[C, C]``, eigenvalues ``0 <= m_k < 1``):

  tr(Lambda_-i Lambda^-1) - P      = -sum_k m_k                        (``trace``)
  log det Lambda - log det Lambda_-i = -sum_k log(1 - m_k)            (``logdet``)
  d^T Lambda_-i d = g_i^T Lambda_-i^-1 g_i                             (``mahalanobis``)
                  = g_i^T Lambda^-1 g_i + v_i^T (I - M_i)^-1 v_i,   v_i = U_i^T Lambda^-1 g_i   (Woodbury)

  LSI_i = KL(N(theta_hat, Lambda^-1) || N(theta_-i, Lambda_-i^-1))
        = 1/2 [ sum_k (-m_k - log(1 - m_k)) + g_i^T Lambda_-i^-1 g_i ].

Every term needs only ``Q_i = (a_i^T (x) I_C) Lambda^-1 (a_i (x) I_C)`` (``[C, C]``): ``M_i = S_i^T Q_i S_i``,
``g_i^T Lambda^-1 g_i = r_i^T Q_i r_i`` and ``v_i = S_i^T Q_i r_i``. One Cholesky of ``Lambda`` and one pass of
matrix products over the samples give all ``N`` scores; ``-m - log(1 - m) >= 0`` is summed term by term, so
nothing cancels (float32 is fine).

Where it is exact. For a Gaussian likelihood (Bayesian linear regression), the objective is quadratic: the
Newton step is the exact leave-one-out fit and ``Lambda_-i`` the exact leave-one-out precision, so this equals
exact leave-one-out LSI (``tests/laplace/test_lsi_closed_form.py``, to 1e-8 in float64). For softmax it
approximates exact retraining twice: the leave-one-out fit is one Newton step from ``theta_hat``, and the
leave-one-out curvature is taken at ``theta_hat`` rather than at the refitted ``theta_-i`` (the Laplace of the
leave-one-out fit at ``theta_hat``). ``method="influence"`` with ``structure="full"`` makes the same Newton step
but recomputes the curvature at ``theta_-i``.

Cost. ``O(N D^2 C^2)`` flops for ``Lambda`` and for the ``Q_i``, ``O((D C)^3)`` for the Cholesky, in chunks of
samples sized by ``memory_budget_gb``; memory ``O(P^2 + chunk D C^2)``, never ``[N, P, P]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from jaxmed.laplace.curvature import output_gradient, output_hessian, probe_chunk, probe_ggn_blocks


def augmented(features: jax.Array) -> jax.Array:
  """``a_n = [1, phi_n]``: ``[N, D]`` -> ``[N, D+1]`` (the probe's Jacobian row, bias first)."""
  return jnp.concatenate([jnp.ones((features.shape[0], 1), features.dtype), features], axis=1)


def sample_quadratics(a: jax.Array, cov: jax.Array, chunk: int) -> jax.Array:
  """``Q_n = (a_n^T (x) I) cov (a_n (x) I)``: ``a [N, D+1]``, ``cov [P, P]`` -> ``[N, C, C]``."""
  d = a.shape[1]
  c = cov.shape[0] // d
  blocks = cov.reshape(d, c, d, c)
  out = []
  for s in range(0, a.shape[0], chunk):
    left = jnp.einsum("ni,icjd->ncjd", a[s:s + chunk], blocks)         # [chunk, C, D+1, C]
    out.append(jnp.einsum("ncjd,nj->ncd", left, a[s:s + chunk]))
  return jnp.concatenate(out)


def _sqrt_psd(h: jax.Array) -> jax.Array:
  """``S`` with ``S S^T = H`` for symmetric PSD ``H [N, C, C]`` (eigen square root; softmax ``H`` is singular)."""
  lam, vec = jnp.linalg.eigh(h)
  return vec * jnp.sqrt(jnp.maximum(lam, 0.0))[:, None, :]


def lsi_closed_form(features: jax.Array, outputs: jax.Array, targets: jax.Array, *, likelihood: str,
                    prior_precision: float = 1.0, sigma: float = 1.0,
                    memory_budget_gb: float = 1.0) -> dict[str, jax.Array]:
  """LSI of every sample of a linear probe at its MAP, in closed form (see the module docstring).

  Args:
    features: ``phi [N, D]`` (a network's penultimate features for last-layer Laplace).
    outputs: ``[N, C]`` the probe's logits (or regression outputs) at the MAP.
    targets: ``[N]`` class indices, or regression targets shaped like ``outputs``.
    likelihood: ``"classification"`` (softmax) or ``"regression"`` (Gaussian, noise std ``sigma``).
    prior_precision: ``delta`` of the isotropic prior ``N(0, delta^-1 I)``, as in :func:`~jaxmed.laplace.laplace`.
    memory_budget_gb: bounds the per-chunk intermediates (``Lambda`` itself is ``[P, P]`` on top).

  Returns:
    ``lsi``, ``trace``, ``mahalanobis``, ``logdet``, each ``[N]``, with the same meaning as
    :func:`~jaxmed.laplace.posterior_kl`'s pieces (``lsi = (trace + mahalanobis + logdet) / 2``); and
    ``leverage`` ``[N, C]``, the eigenvalues ``m_k`` of ``M_n``.
  """
  a = augmented(features)
  n, c = outputs.shape
  h = output_hessian(outputs, likelihood, sigma).astype(a.dtype)
  r = output_gradient(outputs, targets, likelihood, sigma).astype(a.dtype)
  chunk = probe_chunk(a.shape[1], c, memory_budget_gb, a.dtype.itemsize)
  p = a.shape[1] * c
  lam = probe_ggn_blocks(a, h, chunk).reshape(p, p) + prior_precision * jnp.eye(p, dtype=a.dtype)
  chol = jnp.linalg.cholesky(lam)
  cov = jsl.cho_solve((chol, True), jnp.eye(p, dtype=a.dtype))
  q = sample_quadratics(a, 0.5 * (cov + cov.T), chunk)                 # [N, C, C]
  s = _sqrt_psd(h)                                                      # [N, C, C]
  m_mat = jnp.einsum("nkc,nkl,nld->ncd", s, q, s)
  m, w = jnp.linalg.eigh(0.5 * (m_mat + jnp.swapaxes(m_mat, 1, 2)))
  m = jnp.clip(m, 0.0, 1.0 - jnp.finfo(a.dtype).eps)
  v = jnp.einsum("nkc,nkl,nl->nc", s, q, r)                             # U^T Lambda^-1 g
  vw = jnp.einsum("ncd,nc->nd", w, v)
  maha = jnp.einsum("nc,ncd,nd->n", r, q, r) + jnp.sum(vw**2 / (1.0 - m), axis=1)
  trace = -jnp.sum(m, axis=1)
  logdet = -jnp.sum(jnp.log1p(-m), axis=1)
  lsi = 0.5 * (jnp.sum(-m - jnp.log1p(-m), axis=1) + maha)
  return {"lsi": lsi, "trace": trace, "mahalanobis": maha, "logdet": logdet, "leverage": m}
