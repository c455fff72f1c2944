"""Integrated Gradients: exact for a linear model, complete within 1% for the region-graph network at 64 steps."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed import pathology as P


def test_exact_for_linear():
  w = jnp.asarray(np.random.default_rng(0).standard_normal((6, 3)), jnp.float32)
  x, base = jnp.ones((6, 3)), jnp.zeros((6, 3)) + 0.2
  for method in ("gauss_legendre", "trapezoid", "riemann_middle"):
    ig = P.integrated_gradients(lambda v: jnp.sum(w * v), x, base, steps=4, method=method)
    np.testing.assert_allclose(np.asarray(ig), np.asarray(w * (x - base)), rtol=1e-6)


def test_completeness_on_the_graph_network():
  rng = np.random.default_rng(1)
  n = 15
  edges = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
  g = P.pad_to_bucket(P.region_graph(rng.standard_normal((n, 5)), edges, rng.uniform(1, 4, n),
                                     rng.uniform(0, 9, (n, 2))))
  net = P.RegionGraphNet(3, hidden=16, heads=2, coarsen_rounds=1, threshold=0.5)
  params = net.init(jax.random.PRNGKey(0), g)
  x = jnp.asarray(g.nodes["x"])
  node_mask = P.masks(g)[0]
  baseline = jnp.where(node_mask[:, None], x[:n].mean(0), x)  # mean tissue features on the real nodes

  keep = net.apply(params, g)["keep"]  # the partition at the input, held fixed along the path

  def f(v):
    return net.apply(params, g, v, keep=keep)["logits"][0, 2]

  ig = P.integrated_gradients(f, x, baseline, steps=64)
  gap = float(f(x) - f(baseline))
  assert abs(gap) > 1e-3
  assert abs(float(ig.sum()) - gap) <= 0.01 * abs(gap), (float(ig.sum()), gap)
  assert float(jnp.abs(ig[n:]).sum()) == 0.0  # padding nodes get nothing
