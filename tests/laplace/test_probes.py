"""Probe training: a zero weight is the same as leaving the sample out; training converges."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed import laplace as L


def _data():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 5)) * 2
  y = rng.integers(0, 3, 40)
  phi = centres[y] + rng.normal(size=(40, 5))
  return jnp.asarray(phi, jnp.float32), jnp.asarray(y)


def test_zero_weight_equals_training_without_the_sample():
  phi, y = _data()
  probe = L.LinearProbe(3)
  init = probe.init(jax.random.PRNGKey(0), phi[:1])
  masked = L.probe_fit_fn(probe.apply, phi, y, steps=100)(init, jnp.ones(40).at[7].set(0.0))
  keep = np.arange(40) != 7
  dropped = L.probe_fit_fn(probe.apply, phi[keep], y[keep], steps=100)(init, jnp.ones(39))
  for a, b in zip(jax.tree.leaves(masked), jax.tree.leaves(dropped)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_probes_converge_and_fit():
  phi, y = _data()
  for probe in (L.LinearProbe(3), L.MLPProbe(3, hidden=16)):
    init = probe.init(jax.random.PRNGKey(0), phi[:1])
    fit = jax.jit(L.probe_fit_fn(probe.apply, phi, y, steps=400, lr=0.05))
    params = fit(init, jnp.ones(40))
    g = jax.grad(lambda p: L.probe_objective(probe.apply, p, phi, y, jnp.ones(40), 1.0))(params)
    g0 = jax.grad(lambda p: L.probe_objective(probe.apply, p, phi, y, jnp.ones(40), 1.0))(init)
    norm = lambda t: float(jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(t))))  # noqa: E731
    assert norm(g) < 0.05 * norm(g0)
    acc = float(jnp.mean(jnp.argmax(probe.apply(params, phi), -1) == y))
    assert acc > 0.9


def test_newton_fit_reaches_the_optimum_of_the_linear_probe():
  phi, y = _data()
  probe = L.LinearProbe(3)
  with jax.enable_x64(True):
    phi64 = phi.astype(jnp.float64)
    init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(0), phi[:1]))
    w = jnp.ones(40, jnp.float64).at[5].set(0.0)
    params = jax.jit(L.linear_probe_newton_fit_fn(probe.apply, phi64, y, steps=12))(init, w)
    g = jax.grad(lambda p: L.probe_objective(probe.apply, p, phi64, y, w, 1.0))(params)
    assert max(float(jnp.max(jnp.abs(t))) for t in jax.tree.leaves(g)) < 1e-9
    adam = L.probe_fit_fn(probe.apply, phi64, y, steps=3000, lr=0.02)(init, w)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(adam)):
      np.testing.assert_allclose(a, b, atol=1e-4)


def test_lbfgs_fit_reaches_the_newton_optimum():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    x = jnp.asarray(rng.normal(size=(3, 8))[labels] + rng.normal(size=(300, 8)))
    y = jnp.asarray(labels)
    w = jnp.ones(300).at[:5].set(0.0)
    probe = L.LinearProbe(3)
    init = probe.init(jax.random.PRNGKey(0), x[:1])
    newton = L.linear_probe_newton_fit_fn(probe.apply, x, y, steps=30)(init, w)
    lbfgs = L.linear_probe_lbfgs_fit_fn(probe.apply, x, y, tol=1e-9)(init, w)
    for a, b in zip(jax.tree.leaves(newton), jax.tree.leaves(lbfgs)):
      np.testing.assert_allclose(a, b, atol=1e-7)
