"""KFAC probe posterior: exact for Gaussian regression, and its structured KL equals the dense KL."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import laplace as L


def _probe(seed, n=15, d=3, c=4):
  rng = np.random.default_rng(seed)
  phi = jnp.asarray(rng.normal(size=(n, d)))
  kernel = jnp.asarray(rng.normal(size=(d, c)))
  bias = jnp.asarray(rng.normal(size=(c,)))
  return phi, kernel, bias


@pytest.fixture
def x64():
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", False)


def test_kfac_is_exact_for_gaussian_regression(x64):
  phi, kernel, bias = _probe(0, c=2)
  post = L.kfac_probe_posterior(kernel, bias, phi, likelihood="regression", sigma=0.5, prior_precision=2.0)
  model = nn.Dense(2)
  params = {"params": {"kernel": kernel, "bias": bias}}
  full = L.ggn_matrix(model.apply, params, phi, likelihood="regression", sigma=0.5)
  # ravel_pytree puts the bias first; the KFAC vector is [kernel rows..., bias row].
  d, c = kernel.shape
  perm = np.concatenate([np.arange(c, c + d * c), np.arange(c)])
  np.testing.assert_allclose(post.dense_precision(), full[np.ix_(perm, perm)] + 2.0 * np.eye(full.shape[0]),
                             rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("likelihood", ["classification", "regression"])
def test_structured_kl_equals_dense_kl(likelihood, x64):
  phi, k0, b0 = _probe(1)
  _, k1, b1 = _probe(2)
  w = jnp.ones(phi.shape[0]).at[3].set(0.0)
  p0 = L.kfac_probe_posterior(k0, b0, phi, likelihood=likelihood)
  p1 = L.kfac_probe_posterior(k0 + 0.1 * k1, b0 + 0.1 * b1, phi, likelihood=likelihood, weights=w)
  kfac = L.kl_kfac(p0, p1)
  dense = L.kl_full(p0.mean.reshape(-1), p0.dense_precision(), p1.mean.reshape(-1), p1.dense_precision())
  for key in ("kl", "trace", "mahalanobis", "logdet"):
    np.testing.assert_allclose(kfac[key], dense[key], rtol=1e-8, atol=1e-10, err_msg=key)
  assert float(kfac["kl"]) > 0
  assert abs(float(L.kl_kfac(p0, p0)["kl"])) < 1e-10
  np.testing.assert_allclose(p0.log_det_precision(), np.linalg.slogdet(np.asarray(p0.dense_precision()))[1],
                             rtol=1e-10)


def test_lsi_with_kfac_equals_full_for_regression_probe_and_ranks_like_it(x64):
  import scipy.stats
  rng = np.random.default_rng(4)
  n, d, c = 12, 3, 2
  phi = jnp.asarray(rng.normal(size=(n, d)))
  y = jnp.asarray(rng.normal(size=(n, c)))
  model = nn.Dense(c)
  init = model.init(jax.random.PRNGKey(0), phi[:1])

  def fit_fn(p, w):  # exact weighted ridge MAP of [W; b]
    a = jnp.concatenate([phi, jnp.ones((n, 1))], axis=1)
    m = jnp.linalg.solve((a.T * w) @ a + jnp.eye(d + 1), (a.T * w) @ y)
    return {"params": {"kernel": m[:d], "bias": m[d]}}

  kw = dict(likelihood="regression", prior_precision=1.0, sigma=1.0)
  kfac = L.laplace_sample_information(fit_fn, model.apply, init, phi, structure="kfac", **kw)["lsi"]
  full = L.laplace_sample_information(fit_fn, model.apply, init, phi, structure="full", **kw)["lsi"]
  np.testing.assert_allclose(kfac, full, rtol=1e-8)  # KFAC is exact for Gaussian regression
  diag = L.laplace_sample_information(fit_fn, model.apply, init, phi, structure="diag", **kw)["lsi"]
  assert scipy.stats.spearmanr(diag, full)[0] > 0.9  # measured 0.93 (0.90-0.93 over seeds 4-7)
  with pytest.raises(ValueError, match="nn.Dense layer with a bias"):
    L.laplace(nn.Dense(c, use_bias=False).apply, {"params": {"kernel": init["params"]["kernel"]}}, phi,
              likelihood="regression", structure="kfac")


def test_kfac_samples_have_the_inverse_precision_as_covariance(x64):
  rng = np.random.default_rng(1)
  phi = jnp.asarray(rng.normal(size=(30, 2)))
  post = L.kfac_probe_posterior(jnp.asarray(rng.normal(size=(2, 3))), jnp.zeros(3), phi, likelihood="classification",
                                prior_precision=0.5)
  draws = post.sample(jax.random.PRNGKey(0), 40000).reshape(40000, -1)  # row-major [D+1, C], as dense_precision
  cov = np.cov(np.asarray(draws), rowvar=False)
  np.testing.assert_allclose(np.asarray(draws).mean(0), np.asarray(post.mean).reshape(-1), atol=0.03)
  np.testing.assert_allclose(cov, np.linalg.inv(np.asarray(post.dense_precision())), atol=0.03)
