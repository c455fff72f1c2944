"""GGN curvature against closed forms and explicit Jacobians; Gaussian KL identities."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxmed import laplace as L


@pytest.fixture(scope="module")
def probe():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(12, 5)), jnp.float32)
  model = nn.Dense(4)
  params = model.init(jax.random.PRNGKey(0), x[:1])
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p.shape), params)
  return model, params, x


def test_diagonal_ggn_of_softmax_linear_probe_is_analytic(probe):
  model, params, x = probe
  diag = L.ggn_diagonal(model.apply, params, x, likelihood="classification")
  p = np.asarray(jax.nn.softmax(model.apply(params, x), axis=-1), np.float64)
  w = p * (1 - p)  # [N, C]
  expected_kernel = np.einsum("nc,nd->dc", w, np.asarray(x, np.float64) ** 2)  # [D, C]
  expected_bias = w.sum(0)
  expected, _ = ravel_pytree({"params": {"bias": expected_bias, "kernel": expected_kernel}})
  np.testing.assert_allclose(diag, expected, rtol=1e-5, atol=1e-6)
  chunked = L.ggn_diagonal(model.apply, params, x, likelihood="classification", chunk=5)
  np.testing.assert_allclose(chunked, diag, rtol=1e-6, atol=1e-7)


def test_full_ggn_equals_explicit_jacobian_product_and_gvp(probe):
  model, params, x = probe
  full = L.ggn_matrix(model.apply, params, x, likelihood="classification")
  flat, unravel = ravel_pytree(params)
  jac = jax.jacfwd(lambda t: model.apply(unravel(t), x))(flat)  # [N, C, P]
  h = L.output_hessian(model.apply(params, x), "classification")
  explicit = sum(jac[n].T @ h[n] @ jac[n] for n in range(x.shape[0]))
  np.testing.assert_allclose(full, explicit, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jnp.diag(full), L.ggn_diagonal(model.apply, params, x, likelihood="classification"),
                             rtol=1e-5, atol=1e-6)
  v = jax.random.normal(jax.random.PRNGKey(2), flat.shape)
  gv = ravel_pytree(L.ggn_vector_product(model.apply, params, x, unravel(v), likelihood="classification"))[0]
  np.testing.assert_allclose(gv, full @ v, rtol=1e-4, atol=1e-5)
  assert np.all(np.linalg.eigvalsh(np.asarray(full, np.float64)) > -1e-5)  # PSD


def test_regression_ggn_of_linear_model_is_design_gram():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(20, 3)), jnp.float32)
  model = nn.Dense(1, use_bias=False)
  params = model.init(jax.random.PRNGKey(0), x[:1])
  full = L.ggn_matrix(model.apply, params, x, likelihood="regression", sigma=0.5)
  np.testing.assert_allclose(full, (x.T @ x) / 0.25, rtol=1e-5)


def _spd(rng, k):
  a = rng.normal(size=(k, k))
  return a @ a.T + k * np.eye(k)


def test_kl_identities_and_closed_form():
  jax.config.update("jax_enable_x64", True)
  try:
    rng = np.random.default_rng(3)
    k = 6
    mu0, mu1 = rng.normal(size=k), rng.normal(size=k)
    p0, p1 = _spd(rng, k), _spd(rng, k)
    kl = L.kl_full(jnp.asarray(mu0), jnp.asarray(p0), jnp.asarray(mu1), jnp.asarray(p1))
    s0, s1 = np.linalg.inv(p0), np.linalg.inv(p1)
    d = mu1 - mu0
    closed = 0.5 * (np.trace(p1 @ s0) + d @ p1 @ d - k + np.linalg.slogdet(s1)[1] - np.linalg.slogdet(s0)[1])
    np.testing.assert_allclose(kl["kl"], closed, rtol=1e-10)
    np.testing.assert_allclose(kl["kl"], 0.5 * (kl["trace"] + kl["mahalanobis"] + kl["logdet"]), rtol=1e-12)
    assert float(kl["kl"]) > 0
    same = L.kl_full(jnp.asarray(mu0), jnp.asarray(p0), jnp.asarray(mu0), jnp.asarray(p0))
    assert abs(float(same["kl"])) < 1e-12
    q0, q1 = rng.uniform(0.5, 3, k), rng.uniform(0.5, 3, k)
    diag = L.kl_diagonal(jnp.asarray(mu0), jnp.asarray(q0), jnp.asarray(mu1), jnp.asarray(q1))
    full = L.kl_full(jnp.asarray(mu0), jnp.asarray(np.diag(q0)), jnp.asarray(mu1), jnp.asarray(np.diag(q1)))
    for key in ("kl", "trace", "mahalanobis", "logdet"):
      np.testing.assert_allclose(diag[key], full[key], rtol=1e-10, atol=1e-12)
    assert abs(float(L.kl_diagonal(jnp.asarray(mu0), jnp.asarray(q0), jnp.asarray(mu0), jnp.asarray(q0))["kl"])) < 1e-12
  finally:
    jax.config.update("jax_enable_x64", False)


def test_closed_form_linear_probe_ggn_equals_generic_path(probe):
  model, params, x = probe
  w = jnp.asarray(np.random.default_rng(3).uniform(size=x.shape[0]), jnp.float32).at[4].set(0.0)
  logits = model.apply(params, x)
  kw = dict(likelihood="classification", weights=w)
  np.testing.assert_allclose(L.linear_probe_ggn(x, logits, **kw), L.ggn_matrix(model.apply, params, x, **kw),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(L.linear_probe_ggn(x, logits, diagonal=True, **kw),
                             L.ggn_diagonal(model.apply, params, x, **kw), rtol=1e-5, atol=1e-6)
  for structure in ("diag", "full"):
    fast = L.laplace(model.apply, params, x, structure=structure, linear_probe=True, **kw)
    slow = L.laplace(model.apply, params, x, structure=structure, **kw)
    np.testing.assert_allclose(fast.precision, slow.precision, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="linear probe"):
    L.laplace(model.apply, {"params": {"w": x}}, x, likelihood="classification", linear_probe=True)
