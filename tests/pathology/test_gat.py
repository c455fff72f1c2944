"""GAT and the region-graph network: equivariance, invariance, attention normalisation, padding."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from jaxmed import pathology as P


def _graph(seed, n=12, f=5):
  rng = np.random.default_rng(seed)
  edges = np.unique(np.sort(rng.integers(0, n, (2 * n, 2)), 1), axis=0)
  edges = edges[edges[:, 0] != edges[:, 1]]
  return P.region_graph(rng.standard_normal((n, f)), edges, rng.uniform(1, 5, n), rng.uniform(0, 50, (n, 2)))


def _permute(g, perm):
  inv = np.argsort(perm)
  nodes = {k: np.asarray(v)[perm] for k, v in g.nodes.items()}
  return g._replace(nodes=nodes, senders=inv[g.senders], receivers=inv[g.receivers])


def test_gat_is_permutation_equivariant_and_attention_sums_to_one():
  g = _graph(0)
  layer = P.GATLayer(4, heads=3)
  x = jnp.asarray(g.nodes["x"])
  params = layer.init(jax.random.PRNGKey(0), x, g.senders, g.receivers)
  out, att = layer.apply(params, x, g.senders, g.receivers, return_attention=True)
  perm = np.random.default_rng(1).permutation(12)
  gp = _permute(g, perm)
  out_p = layer.apply(params, jnp.asarray(gp.nodes["x"]), gp.senders, gp.receivers)
  np.testing.assert_allclose(np.asarray(out_p), np.asarray(out)[perm], atol=1e-5)
  sums = jax.ops.segment_sum(att["alpha"], att["receivers"], 12)
  np.testing.assert_allclose(np.asarray(sums), 1.0, atol=1e-6)
  # masking an edge removes it from its receiver's softmax; the rest still sums to 1
  mask = jnp.ones(len(g.senders), bool).at[0].set(False)
  _, att_m = layer.apply(params, x, g.senders, g.receivers, mask, return_attention=True)
  assert float(att_m["alpha"][0].sum()) == 0.0
  np.testing.assert_allclose(np.asarray(jax.ops.segment_sum(att_m["alpha"], att_m["receivers"], 12)), 1.0,
                             atol=1e-6)


def test_network_readout_is_invariant_and_padding_changes_nothing():
  net = P.RegionGraphNet(3, hidden=16, heads=2, coarsen_rounds=1, threshold=0.3)
  g = _graph(2)
  small = P.batch_and_pad([g, _graph(3)])
  params = net.init(jax.random.PRNGKey(0), small)
  out = net.apply(params, small)
  perm = np.random.default_rng(4).permutation(12)
  out_p = net.apply(params, P.batch_and_pad([_permute(g, perm), _graph(3)]))
  np.testing.assert_allclose(np.asarray(out_p["logits"][:2]), np.asarray(out["logits"][:2]), atol=1e-5)
  np.testing.assert_allclose(np.asarray(out_p["risk"][:2]), np.asarray(out["risk"][:2]), atol=1e-5)
  assert 1 <= float(out["num_nodes"][0]) < 12  # the threshold merged some regions
  big = jraph.pad_with_graphs(jraph.batch([g, _graph(3)]), 128, 256, 5)  # a larger bucket, more padding graphs
  out_big = net.apply(params, big)
  np.testing.assert_allclose(np.asarray(out_big["logits"][:2]), np.asarray(out["logits"][:2]), atol=1e-5)
  np.testing.assert_allclose(np.asarray(out_big["num_nodes"][:2]), np.asarray(out["num_nodes"][:2]))


def test_buckets_are_powers_of_two():
  g = P.batch_and_pad([_graph(0, n=20), _graph(1, n=7)])
  assert g.nodes["x"].shape[0] == 32 and g.senders.shape[0] in (64, 128) and len(g.n_node) == 3
  assert P.next_pow2(1) == 1 and P.next_pow2(33) == 64
