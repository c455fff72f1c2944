"""The exact leave-one-out path's memory: linear in N at a fixed chunk, and the chunk from a budget."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import laplace as L
from jaxmed.laplace.lsi import loo_chunk


def _peak_bytes(n, chunk):
  """Temporary + argument bytes of the compiled exact-LOO program (XLA's buffer assignment)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n, 8)))
  y = jnp.asarray(rng.integers(0, 3, n))
  probe = L.LinearProbe(3)
  init = probe.init(jax.random.PRNGKey(0), x[:1])
  fit = L.linear_probe_newton_fit_fn(probe.apply, x, y, steps=3)
  run = lambda x: L.laplace_sample_information(fit, probe.apply, init, x, likelihood="classification",  # noqa: E731
                                               structure="full", linear_probe=True, chunk=chunk)["lsi"]
  m = jax.jit(run).lower(x).compile().memory_analysis()
  return m.temp_size_in_bytes + m.argument_size_in_bytes


@pytest.mark.parametrize("chunk", [1, 8])
def test_exact_loo_memory_grows_linearly_in_n(chunk):
  with jax.enable_x64(True):
    b1, b2, b4 = (_peak_bytes(n, chunk) for n in (200, 400, 800))
  # linear growth doubles the increment when N doubles; N^2 growth (all runs' [N, ...] buffers at once) quadruples it
  ratio = (b4 - b2) / (b2 - b1)
  assert 1.5 < ratio < 3.0, (b1, b2, b4)


def test_loo_chunk_follows_the_budget():
  p, n = (16 + 1) * 10, 1797
  one = loo_chunk(p, n, ("full",), memory_budget_gb=1.0)
  assert loo_chunk(p, n, ("full",), memory_budget_gb=2.0) in (2 * one, 2 * one + 1)
  per_run = 2 * (n + p + 2 * p * p) * 8
  assert one == 2**30 // per_run
  assert loo_chunk(5130, 50_000, ("full",), memory_budget_gb=0.01) == 1


def _p650_case():
  rng = np.random.default_rng(0)
  n, d, c = 2000, 64, 10                                     # P = (64 + 1) * 10 = 650
  centres = rng.normal(size=(c, d)) * 0.5
  labels = rng.integers(0, c, n)
  x = centres[labels] + rng.normal(size=(n, d))
  labels[:200] = (labels[:200] + 1) % c
  return x, labels


def test_precision_policy_at_650_parameters():
  x, labels = _p650_case()
  y = jnp.asarray(labels)
  probe = L.LinearProbe(10)
  # the exact full-covariance path refuses float32
  x32 = jnp.asarray(x, jnp.float32)
  init32 = probe.init(jax.random.PRNGKey(0), x32[:1])
  fit32 = L.linear_probe_newton_fit_fn(probe.apply, x32, y, steps=2)
  with pytest.raises(ValueError, match="float64"):
    L.laplace_sample_information(fit32, probe.apply, init32, x32, likelihood="classification", structure="full",
                                 linear_probe=True, indices=jnp.arange(2))
  # the closed form is kept in float32: within 1e-3 of float64
  with jax.enable_x64(True):
    x64 = jnp.asarray(x)
    init = probe.init(jax.random.PRNGKey(0), x64[:1])
    params = L.linear_probe_newton_fit_fn(probe.apply, x64, y, steps=15)(init, jnp.ones(len(x), x64.dtype))
    logits = probe.apply(params, x64)
    ref = np.asarray(L.lsi_closed_form(x64, logits, y, likelihood="classification")["lsi"])
  low = L.lsi_closed_form(x32, jnp.asarray(logits, jnp.float32), y, likelihood="classification")["lsi"]
  assert low.dtype == jnp.float32
  np.testing.assert_allclose(low, ref, rtol=1e-3, atol=1e-6 * ref.max())
