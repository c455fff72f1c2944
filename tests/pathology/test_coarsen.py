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


def _path4(z):
  """A 4-node path 0-1-2-3 (both edge directions), unit areas, features x_i = (i, 0), with node embeddings ``z``."""
  g = P.pad_to_bucket(P.region_graph(np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]]), np.array([[0, 1], [1, 2], [2, 3]]),
                                     np.ones(4), np.zeros((4, 2))))
  node_mask, edge_mask, _ = P.masks(g)
  n = g.nodes["x"].shape[0]
  zz = jnp.zeros((n, 2)).at[:4].set(z)
  return g, node_mask, edge_mask, zz


def _angles(a):
  return jnp.stack([jnp.cos(a), jnp.sin(a)], -1)


# embeddings at angles 0, 0.1, 1.2, 1.6 rad: cos sims 0.995 (0-1, merged at threshold 0.9), 0.46 (1-2), 0.92 (2-3,
# merged); below, threshold 0.95 leaves 2-3 unmerged, and each loss reads one coarse slot
Z4 = jnp.array([0.0, 0.1, 1.2, 1.6])


def _slot_loss(angles, slot, threshold):
  g, node_mask, edge_mask, z = _path4(_angles(angles))
  c = _run(g, node_mask, edge_mask, z, threshold)
  return -c.x[slot, 0], c  # lower when the slot's feature is larger


def test_merge_gradient_pulls_an_unmerged_pair_together_when_merging_lowers_the_loss():
  # threshold 0.95: 0-1 merged, 2 and 3 separate. The loss -x_slot2 is lower once 3 (x = 3) joins 2 (x = 2).
  loss, c = _slot_loss(Z4, 2, 0.95)
  assert np.asarray(c.assignment)[:4].tolist() == [0, 0, 2, 3]
  merged_z = np.asarray(c.keep).copy()
  s, r = np.asarray(c.senders), np.asarray(c.receivers)
  merged_z[((s == 2) & (r == 3)) | ((s == 3) & (r == 2))] = True
  g, node_mask, edge_mask, z = _path4(_angles(Z4))
  after = P.coarsen(jnp.asarray(g.nodes["x"]), jnp.asarray(g.nodes["area"]), jnp.asarray(g.nodes["pos"]), z,
                    g.senders, g.receivers, node_mask, edge_mask, threshold=0.95, keep=jnp.asarray(merged_z))
  assert float(-after.x[2, 0]) < float(loss)  # the merge does lower it (slot 2 becomes the mean 2.5)
  grad = jax.grad(lambda a: _slot_loss(a, 2, 0.95)[0])(Z4)
  assert abs(float(grad[2])) > 1e-3 and abs(float(grad[3])) > 1e-3
  # a gradient step moves angles 2 and 3 towards each other: their similarity rises, towards the merge
  step = Z4 - 0.01 * grad / jnp.abs(grad).max()
  assert float(step[3] - step[2]) < float(Z4[3] - Z4[2])


def test_merge_gradient_pushes_a_merged_pair_apart_when_splitting_lowers_the_loss():
  # threshold 0.9: 0-1 merged into slot 0 (x = 0.5). The loss +x_slot0 is lower once 1 (x = 1) splits off (x_0 = 0).
  def loss(a):
    g, node_mask, edge_mask, z = _path4(_angles(a))
    return _run(g, node_mask, edge_mask, z, 0.9).x[0, 0]

  g, node_mask, edge_mask, z = _path4(_angles(Z4))
  c = _run(g, node_mask, edge_mask, z, 0.9)
  assert np.asarray(c.assignment)[:4].tolist() == [0, 0, 2, 2]
  np.testing.assert_allclose(float(loss(Z4)), 0.5, atol=1e-6)  # forward: the exact hard mean
  grad = jax.grad(loss)(Z4)
  assert abs(float(grad[1] - grad[0])) > 1e-3
  step = Z4 - 0.01 * grad / jnp.abs(grad).max()
  assert float(step[1] - step[0]) > float(Z4[1] - Z4[0])  # the pair's similarity falls, towards the split


def test_merge_gradient_leaves_x_gradient_that_of_the_hard_partition():
  g, node_mask, edge_mask, z = _path4(_angles(Z4))
  x = jnp.asarray(g.nodes["x"])

  def f(x):
    c = P.coarsen(x, jnp.asarray(g.nodes["area"]), jnp.asarray(g.nodes["pos"]), z, g.senders, g.receivers,
                  node_mask, edge_mask, threshold=0.9)
    return c.x[0, 0] + 2 * c.x[2, 0]

  gx = np.asarray(jax.grad(f)(x))[:4, 0]
  np.testing.assert_allclose(gx, [0.5, 0.5, 1.0, 1.0], atol=1e-6)  # d(mean)/dx_i = area share, nothing more
