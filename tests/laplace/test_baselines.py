"""Baselines against closed forms on a linear softmax probe."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed import laplace as L


def _probe():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(9, 4)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, 9))
  model = nn.Dense(3)
  params = model.init(jax.random.PRNGKey(0), x[:1])
  return model, params, x, y


def test_loss_el2n_and_grand_closed_forms():
  model, params, x, y = _probe()
  logits = model.apply(params, x)
  p = np.asarray(jax.nn.softmax(logits))
  onehot = np.eye(3)[np.asarray(y)]
  np.testing.assert_allclose(L.per_sample_loss(logits, y), -np.log((p * onehot).sum(1)), rtol=1e-5)
  np.testing.assert_allclose(L.el2n(logits, y), np.linalg.norm(p - onehot, axis=1), rtol=1e-5)
  # For a linear probe, grad of the kernel is phi (p - y)^T and of the bias (p - y).
  r = p - onehot
  expected = np.sqrt((np.asarray(x) ** 2).sum(1) * (r ** 2).sum(1) + (r ** 2).sum(1))
  np.testing.assert_allclose(L.grand(model.apply, params, x, y), expected, rtol=1e-5)


def test_data_map_and_self_influence():
  probs = jnp.asarray([[0.2, 0.9], [0.4, 0.9], [0.6, 0.9]])
  dm = L.data_map(probs)
  np.testing.assert_allclose(dm["confidence"], [0.4, 0.9], rtol=1e-6)
  np.testing.assert_allclose(dm["variability"], [np.std([0.2, 0.4, 0.6]), 0.0], atol=1e-7)
  model, params, x, y = _probe()
  g = np.asarray(L.per_sample_gradients(model.apply, params, x, y))
  prec = np.diag(np.arange(1.0, g.shape[1] + 1))
  np.testing.assert_allclose(L.self_influence(model.apply, params, x, y, jnp.asarray(prec)),
                             np.einsum("np,pq,nq->n", g, np.linalg.inv(prec), g), rtol=1e-4)
  np.testing.assert_allclose(L.self_influence(model.apply, params, x, y, jnp.asarray(np.diag(prec))),
                             np.einsum("np,pq,nq->n", g, np.linalg.inv(prec), g), rtol=1e-4)
