"""Multi-layer KFAC against laplace-torch's KronLaplace (factors, log-determinant, log marginal likelihood)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed.laplace import kfac_layers as K


class MLP(nn.Module):
  """Two hidden layers (tanh), softmax outputs."""
  hidden: int = 6
  classes: int = 3

  @nn.compact
  def __call__(self, x):
    x = jnp.tanh(nn.Dense(self.hidden)(x))
    x = jnp.tanh(nn.Dense(self.hidden)(x))
    return nn.Dense(self.classes)(x)


def _case(n=40, d=4):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, d))
  y = rng.integers(0, 3, n)
  model = MLP()
  params = model.init(jax.random.PRNGKey(1), jnp.asarray(x[:1]))
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  return x, y, model, params


def test_kfac_is_the_exact_ggn_block_for_a_single_sample():
  # with one sample the sum of Kronecker products is one product: KFAC equals the layer's exact GGN block
  with jax.enable_x64(True):
    x, _, model, params = _case(n=1)
    xj = jnp.asarray(x)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    from jaxmed import laplace as L
    full = L.ggn_matrix(model.apply, params, xj, likelihood="classification")
    factors = K.layer_factors(model.apply, params, xj, likelihood="classification")
    # the last layer's kernel block: ravel order is Dense_0 (bias, kernel), Dense_1, Dense_2
    sizes = [(f.a.shape[0], f.b.shape[0]) for f in factors]
    offset = sum(i * o + o for i, o in sizes[:2]) + sizes[2][1]      # skip earlier layers and this bias
    i, o = sizes[2]
    block = full[offset:offset + i * o, offset:offset + i * o]
    np.testing.assert_allclose(jnp.kron(factors[2].a, factors[2].b), block, rtol=1e-9, atol=1e-12)


def test_kfac_matches_laplace_torch():
  torch = pytest.importorskip("torch")
  laplace = pytest.importorskip("laplace")
  x, y, model, params = _case()
  delta = 0.7
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
    factors = K.layer_factors(model.apply, p64, jnp.asarray(x), likelihood="classification")
    lml = K.kfac_log_marginal_likelihood(model.apply, p64, jnp.asarray(x), jnp.asarray(y), factors, delta)
    logdet = K.kfac_log_det_precision(factors, delta)

  torch.set_default_dtype(torch.float64)
  try:
    layers = []
    for k in ("Dense_0", "Dense_1", "Dense_2"):
      lin = torch.nn.Linear(*np.asarray(params["params"][k]["kernel"]).shape)
      with torch.no_grad():
        lin.weight.copy_(torch.tensor(np.asarray(params["params"][k]["kernel"]).T))
        lin.bias.copy_(torch.tensor(np.asarray(params["params"][k]["bias"])))
      layers.append(lin)
    net = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1], torch.nn.Tanh(), layers[2])
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    la = laplace.Laplace(net, "classification", subset_of_weights="all", hessian_structure="kron",
                         prior_precision=delta)
    la.fit(torch.utils.data.DataLoader(data, batch_size=len(y)))
    kfacs = la.H_facs.kfacs                                          # [B, A] per weight, [B] per bias
    for f, layer in zip(factors, range(3)):
      b_ref, a_ref = kfacs[2 * layer]
      np.testing.assert_allclose(np.kron(np.asarray(f.b), np.asarray(f.a)),
                                 np.kron(b_ref.numpy(), a_ref.numpy()), rtol=1e-6, atol=1e-9)
      np.testing.assert_allclose(np.asarray(f.b), kfacs[2 * layer + 1][0].numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(float(logdet), float(la.log_det_posterior_precision), rtol=1e-8)
    np.testing.assert_allclose(float(lml), float(la.log_marginal_likelihood()), rtol=1e-8)
  finally:
    torch.set_default_dtype(torch.float32)


def test_network_kfac_kl_equals_the_dense_block_diagonal_kl():
  from jax.flatten_util import ravel_pytree
  from jaxmed import laplace as L
  with jax.enable_x64(True):
    x, _, model, params = _case(n=12)
    xj = jnp.asarray(x)
    p0 = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    p1 = jax.tree.map(lambda p: p + 0.05, p0)
    w = jnp.ones(12).at[3].set(0.0)
    post0 = L.laplace(model.apply, p0, xj, likelihood="classification", structure="kfac", prior_precision=0.5)
    post1 = L.laplace(model.apply, p1, xj, likelihood="classification", structure="kfac", prior_precision=0.5,
                      weights=w)
    kl = L.posterior_kl(post0, post1)

    def dense(post):  # ravel order: per layer the bias, then the kernel [d_in, d_out] row-major
      blocks = []
      for f in post.factors:
        eye_o = jnp.eye(f.b.shape[0])
        blocks += [f.b + 0.5 * eye_o, jnp.kron(f.a, f.b) + 0.5 * jnp.eye(f.a.shape[0] * f.b.shape[0])]
      return jax.scipy.linalg.block_diag(*blocks)

    ref = L.kl_full(ravel_pytree(p0)[0], dense(post0), ravel_pytree(p1)[0], dense(post1))
    for k in ("kl", "trace", "mahalanobis", "logdet"):
      np.testing.assert_allclose(kl[k], ref[k], rtol=1e-8, atol=1e-10)
    assert abs(float(L.posterior_kl(post0, post0)["kl"])) < 1e-10


def test_lsi_of_an_mlp_probe_with_layerwise_kfac_tracks_full():
  import scipy.stats
  from jaxmed import laplace as L
  with jax.enable_x64(True):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 24)
    x = jnp.asarray(rng.normal(size=(3, 4))[y] * 1.5 + rng.normal(size=(24, 4)))
    y[:2] = (y[:2] + 1) % 3
    y = jnp.asarray(y)
    probe = L.MLPProbe(3, hidden=5)
    init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(0), x[:1]))
    fit = L.probe_fit_fn(probe.apply, x, y, steps=300, lr=0.05)
    out = L.laplace_sample_information(fit, probe.apply, init, x, likelihood="classification",
                                       structure=("kfac", "full"))
    rho = scipy.stats.spearmanr(out["kfac"]["lsi"], out["full"]["lsi"])[0]
    assert rho > 0.8, rho
    assert np.all(np.isfinite(out["kfac"]["lsi"])) and np.all(np.asarray(out["kfac"]["lsi"]) > 0)
