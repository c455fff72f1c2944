"""LSI on Bayesian linear regression, where the Laplace posterior is exact, against the closed form."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import laplace as L

SIGMA, DELTA = 0.7, 1.0


def _closed_form_lsi(x, y):
  """KL(N(mu, Lambda^-1) || N(mu_-i, Lambda_-i^-1)) with Lambda_-i a rank-1 downdate of Lambda."""
  d = x.shape[1]
  lam = x.T @ x / SIGMA**2 + DELTA * np.eye(d)
  b = x.T @ y / SIGMA**2
  mu = np.linalg.solve(lam, b)
  out = []
  for i in range(len(x)):
    lam_i = lam - np.outer(x[i], x[i]) / SIGMA**2
    mu_i = np.linalg.solve(lam_i, b - x[i] * y[i] / SIGMA**2)
    dm = mu_i - mu
    kl = 0.5 * (np.trace(lam_i @ np.linalg.inv(lam)) + dm @ lam_i @ dm - d
                + np.linalg.slogdet(lam)[1] - np.linalg.slogdet(lam_i)[1])
    out.append(kl)
  return np.array(out)


def _setup(design):
  rng = np.random.default_rng(0)
  n, d = 10, 4
  if design == "diagonal":  # each sample touches one feature: X^T W X is diagonal for any weights W
    x = np.zeros((n, d))
    x[np.arange(n), np.arange(n) % d] = rng.uniform(0.5, 2.0, n)
  else:
    x = rng.normal(size=(n, d))
  y = x @ rng.normal(size=d) + SIGMA * rng.normal(size=n)
  model = nn.Dense(1, use_bias=False)
  xj, yj = jnp.asarray(x), jnp.asarray(y)
  init = model.init(jax.random.PRNGKey(0), xj[:1])

  def fit_fn(params, w):  # the exact MAP of the weighted ridge problem
    lam = (xj.T * w) @ xj / SIGMA**2 + DELTA * jnp.eye(d)
    mu = jnp.linalg.solve(lam, (xj.T * w) @ yj / SIGMA**2)
    return {"params": {"kernel": mu[:, None]}}

  return model, init, fit_fn, x, y, xj


@pytest.mark.parametrize("structure,design", [("full", "diagonal"), ("diag", "diagonal"), ("full", "dense")])
def test_lsi_matches_closed_form_kl(structure, design):
  jax.config.update("jax_enable_x64", True)
  try:
    model, init, fit_fn, x, y, xj = _setup(design)
    out = L.laplace_sample_information(fit_fn, model.apply, init, xj, likelihood="regression", structure=structure,
                                       prior_precision=DELTA, sigma=SIGMA)
    np.testing.assert_allclose(out["lsi"], _closed_form_lsi(x, y), rtol=1e-5)
    np.testing.assert_allclose(out["lsi"], 0.5 * (out["trace"] + out["mahalanobis"] + out["logdet"]), rtol=1e-10)
    assert np.all(np.asarray(out["lsi"]) > 0)
  finally:
    jax.config.update("jax_enable_x64", False)


def test_vmapped_loo_equals_python_loop():
  jax.config.update("jax_enable_x64", True)
  try:
    model, init, fit_fn, _, _, xj = _setup("dense")
    kw = dict(likelihood="regression", structure="full", prior_precision=DELTA, sigma=SIGMA)
    chunked = L.laplace_sample_information(fit_fn, model.apply, init, xj, chunk=3, **kw)["lsi"]
    looped = [L.laplace_sample_information(fit_fn, model.apply, init, xj, indices=[i], **kw)["lsi"][0]
              for i in range(4)]
    np.testing.assert_allclose(chunked[:4], looped, rtol=1e-12)
  finally:
    jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("structure,design", [("full", "dense"), ("diag", "diagonal")])
def test_influence_is_exact_for_linear_gaussian(structure, design):
  jax.config.update("jax_enable_x64", True)
  try:
    model, init, fit_fn, _, y, xj = _setup(design)
    kw = dict(likelihood="regression", structure=structure, prior_precision=DELTA, sigma=SIGMA)
    exact = L.laplace_sample_information(fit_fn, model.apply, init, xj, **kw)["lsi"]
    infl = L.laplace_sample_information(fit_fn, model.apply, init, xj, method="influence",
                                        targets=jnp.asarray(y)[:, None], **kw)["lsi"]
    np.testing.assert_allclose(infl, exact, rtol=1e-8)
  finally:
    jax.config.update("jax_enable_x64", False)


def test_warm_and_influence_track_exact_on_a_softmax_probe():
  import scipy.stats
  jax.config.update("jax_enable_x64", True)
  try:
    rng = np.random.default_rng(5)
    n, d, c = 30, 3, 3
    centres = rng.normal(size=(c, d)) * 1.5
    labels = rng.integers(0, c, n)
    x = jnp.asarray(centres[labels] + rng.normal(size=(n, d)))
    labels = labels.copy()
    labels[:3] = (labels[:3] + 1) % c  # a few mislabelled points are the most informative
    y = jnp.asarray(labels)
    model = nn.Dense(c)
    init = model.init(jax.random.PRNGKey(0), x[:1])

    def make_fit(steps):  # Newton's method: the exact optimum of this convex problem in a few steps
      return L.linear_probe_newton_fit_fn(model.apply, x, y, prior_precision=DELTA, steps=steps)

    kw = dict(likelihood="classification", structure="full", prior_precision=DELTA)
    exact = np.asarray(L.laplace_sample_information(make_fit(25), model.apply, init, x, **kw)["lsi"])
    warm = np.asarray(L.laplace_sample_information(make_fit(25), model.apply, init, x, method="warm",
                                                   warm_fit_fn=make_fit(3), **kw)["lsi"])
    infl = np.asarray(L.laplace_sample_information(make_fit(25), model.apply, init, x, method="influence",
                                                   targets=y, **kw)["lsi"])
    np.testing.assert_allclose(warm, exact, rtol=1e-2, atol=1e-6)  # 3 warm Newton steps vs 25 cold
    assert scipy.stats.spearmanr(infl, exact)[0] > 0.9
    assert set(np.argsort(-exact)[:3]) & {0, 1, 2}  # a flipped label is among the top-3 LSI
  finally:
    jax.config.update("jax_enable_x64", False)


def test_several_structures_share_the_retrainings_and_match_single_calls():
  with jax.enable_x64(True):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(16, 3)))
    y = jnp.asarray(rng.integers(0, 3, 16))
    model = nn.Dense(3)
    init = model.init(jax.random.PRNGKey(0), x[:1])
    fit = L.linear_probe_newton_fit_fn(model.apply, x, y, steps=15)
    kw = dict(likelihood="classification", indices=jnp.arange(5))
    both = L.laplace_sample_information(fit, model.apply, init, x, structure=("diag", "full", "kfac"),
                                        linear_probe=True, **kw)
    for s in ("diag", "full", "kfac"):
      single = L.laplace_sample_information(fit, model.apply, init, x, structure=s, **kw)
      np.testing.assert_allclose(both[s]["lsi"], single["lsi"], rtol=1e-8)
    with pytest.raises(ValueError, match="influence"):
      L.laplace_sample_information(fit, model.apply, init, x, structure="kfac", method="influence", targets=y, **kw)


def test_closed_form_all_sample_lsi_equals_exact_loo_on_bayesian_linear_regression():
  with jax.enable_x64(True):
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(25, 4))
    y = phi @ rng.normal(size=4) + 0.3 + SIGMA * rng.normal(size=25)
    a = np.concatenate([np.ones((25, 1)), phi], axis=1)          # the probe's bias is a parameter with the prior
    lam = a.T @ a / SIGMA**2 + DELTA * np.eye(5)
    mu = np.linalg.solve(lam, a.T @ y / SIGMA**2)                  # the MAP
    out = L.lsi_closed_form(jnp.asarray(phi), jnp.asarray((a @ mu)[:, None]), jnp.asarray(y[:, None]),
                            likelihood="regression", prior_precision=DELTA, sigma=SIGMA)
    np.testing.assert_allclose(out["lsi"], _closed_form_lsi(a, y), rtol=1e-8)
    np.testing.assert_allclose(out["lsi"], 0.5 * (out["trace"] + out["mahalanobis"] + out["logdet"]), rtol=1e-10)


def _softmax_probe_case(n=60, d=4, c=3, seed=5):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(c, d)) * 1.5
  labels = rng.integers(0, c, n)
  x = jnp.asarray(centres[labels] + rng.normal(size=(n, d)))
  labels[:4] = (labels[:4] + 1) % c                                # flipped labels
  return x, jnp.asarray(labels)


def test_closed_form_tracks_exact_retraining_on_a_softmax_probe():
  import scipy.stats
  with jax.enable_x64(True):
    x, y = _softmax_probe_case()
    model = L.LinearProbe(3)
    init = model.init(jax.random.PRNGKey(0), x[:1])
    fit = L.linear_probe_newton_fit_fn(model.apply, x, y, prior_precision=DELTA, steps=25)
    exact = L.laplace_sample_information(fit, model.apply, init, x, likelihood="classification", structure="full",
                                         prior_precision=DELTA, linear_probe=True)
    params = fit(init, jnp.ones(x.shape[0], x.dtype))
    closed = L.lsi_closed_form(x, model.apply(params, x), y, likelihood="classification", prior_precision=DELTA)
    assert scipy.stats.spearmanr(closed["lsi"], exact["lsi"])[0] >= 0.99
    assert np.median(np.abs(closed["lsi"] / exact["lsi"] - 1)) < 0.25   # 16% at N = 60; shrinks with N
    assert set(np.argsort(-np.asarray(closed["lsi"]))[:4]) & {0, 1, 2, 3}


def test_closed_form_method_of_laplace_sample_information():
  with jax.enable_x64(True):
    x, y = _softmax_probe_case(n=20)
    model = L.LinearProbe(3)
    init = model.init(jax.random.PRNGKey(0), x[:1])
    fit = L.linear_probe_newton_fit_fn(model.apply, x, y, steps=20)
    out = L.laplace_sample_information(fit, model.apply, init, x, likelihood="classification", structure="full",
                                       linear_probe=True, method="closed_form", targets=y, indices=jnp.arange(5))
    direct = L.lsi_closed_form(x, model.apply(fit(init, jnp.ones(20, x.dtype)), x), y, likelihood="classification")
    np.testing.assert_allclose(out["lsi"], direct["lsi"][:5], rtol=1e-10)
    with pytest.raises(ValueError, match="linear_probe=True"):
      L.laplace_sample_information(fit, model.apply, init, x, likelihood="classification", structure="diag",
                                   method="closed_form", targets=y)


def test_warm_start_at_the_closed_form_estimate_converges_to_exact_retraining():
  with jax.enable_x64(True):
    x, y = _softmax_probe_case(n=30)
    model = L.LinearProbe(3)
    init = model.init(jax.random.PRNGKey(0), x[:1])
    kw = dict(likelihood="classification", structure="full", linear_probe=True, prior_precision=DELTA)
    cold = L.linear_probe_newton_fit_fn(model.apply, x, y, prior_precision=DELTA, steps=25)
    exact = L.laplace_sample_information(cold, model.apply, init, x, **kw)["lsi"]
    tol_fit = L.linear_probe_newton_fit_fn(model.apply, x, y, prior_precision=DELTA, steps=25, tol=1e-10)
    warm = L.laplace_sample_information(cold, model.apply, init, x, method="warm", warm_fit_fn=tol_fit, targets=y,
                                        **kw)["lsi"]
    np.testing.assert_allclose(warm, exact, rtol=1e-7)
    # from the closed-form estimate, two Newton steps are within 0.3% even for the most influential sample
    two = L.linear_probe_newton_fit_fn(model.apply, x, y, prior_precision=DELTA, steps=2)
    near = L.laplace_sample_information(cold, model.apply, init, x, method="warm", warm_fit_fn=two, targets=y,
                                        **kw)["lsi"]
    np.testing.assert_allclose(near, exact, rtol=5e-3)
