"""Coarsening invariants: a partition, area kept, no merge above the max similarity, full merge for equal embeddings."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as scipy_cc

from jaxmed import pathology as P


def _setup(seed, n=40):
  rng = np.random.default_rng(seed)
  edges = np.unique(np.sort(rng.integers(0, n, (n, 2)), 1), axis=0)
  edges = edges[edges[:, 0] != edges[:, 1]]
  g = P.pad_to_bucket(P.region_graph(rng.standard_normal((n, 3)), edges, rng.uniform(1, 9, n),
                                     rng.uniform(0, 9, (n, 2))))
  node_mask, edge_mask, _ = P.masks(g)
  z = jnp.asarray(rng.standard_normal((g.nodes["x"].shape[0], 4)), jnp.float32)
  return g, node_mask, edge_mask, z, edges, n


def _run(g, node_mask, edge_mask, z, threshold):
  return P.coarsen(jnp.asarray(g.nodes["x"]), jnp.asarray(g.nodes["area"]), jnp.asarray(g.nodes["pos"]), z,
                   g.senders, g.receivers, node_mask, edge_mask, threshold=threshold)


def test_partition_area_and_components_match_scipy():
  g, node_mask, edge_mask, z, edges, n = _setup(0)
  c = _run(g, node_mask, edge_mask, z, 0.2)
  a = np.asarray(c.assignment)[:n]
  live = np.asarray(c.node_mask)
  assert live[a].all() and (a[a] == a).all()  # every real node maps to one live slot, its own representative
  assert live.sum() == len(np.unique(a)) < n
  np.testing.assert_allclose(float(c.area.sum()), float(np.asarray(g.nodes["area"])[:n].sum()), rtol=1e-6)
  # components equal scipy's over the kept edges
  sim = np.asarray(P.edge_similarity(z, g.senders, g.receivers))
  keep = np.asarray(edge_mask) & (sim > 0.2)
  s, r = np.asarray(g.senders)[keep], np.asarray(g.receivers)[keep]
  _, ref = scipy_cc(sp.coo_matrix((np.ones(len(s)), (s, r)), shape=(n + 1, n + 1)), directed=False)
  same = ref[:n, None] == ref[None, :n]
  np.testing.assert_array_equal(a[:, None] == a[None, :], same)
  # coarse edges: unique, between different live nodes, exactly the binarised C^T A C off the diagonal
  cs, cr = np.asarray(c.senders)[np.asarray(c.edge_mask)], np.asarray(c.receivers)[np.asarray(c.edge_mask)]
  pairs = set(zip(cs.tolist(), cr.tolist()))
  assert len(pairs) == len(cs) and all(u != v and live[u] and live[v] for u, v in pairs)
  expected = {(a[u], a[v]) for u, v in np.concatenate([edges, edges[:, ::-1]]) if a[u] != a[v]}
  assert pairs == expected
  # pooled features are the area-weighted means
  area, x = np.asarray(g.nodes["area"])[:n], np.asarray(g.nodes["x"])[:n]
  for k in np.unique(a)[:5]:
    m = a == k
    np.testing.assert_allclose(np.asarray(c.x)[k], (area[m, None] * x[m]).sum(0) / area[m].sum(), atol=1e-5)


def test_threshold_extremes():
  g, node_mask, edge_mask, z, edges, n = _setup(1)
  sim = P.edge_similarity(z, g.senders, g.receivers)
  none = _run(g, node_mask, edge_mask, z, float(jnp.max(jnp.where(edge_mask, sim, -1))) + 1e-4)
  np.testing.assert_array_equal(np.asarray(none.assignment), np.arange(len(none.assignment)))
  np.testing.assert_allclose(np.asarray(none.x)[:n], np.asarray(g.nodes["x"])[:n], atol=1e-6)
  ones = jnp.ones_like(z)  # identical embeddings: similarity 1 on every edge
  full = _run(g, node_mask, edge_mask, ones, 0.5)
  _, ref = scipy_cc(sp.coo_matrix((np.ones(len(edges)), tuple(edges.T)), shape=(n, n)), directed=False)
  assert int(np.asarray(full.node_mask).sum()) == ref.max() + 1  # one node per connected component
  assert int(np.asarray(full.edge_mask).sum()) == 0


def test_embeddings_get_gradient_through_the_straight_through_gate():
  g, node_mask, edge_mask, z, edges, n = _setup(2)

  def loss(z):
    c = _run(g, node_mask, edge_mask, z, 0.2)
    return jnp.sum(jnp.where(c.node_mask[:, None], c.x, 0.0) ** 2)

  grad = jax.grad(loss)(z)
  assert np.isfinite(np.asarray(grad)).all() and float(jnp.abs(grad).sum()) > 0
