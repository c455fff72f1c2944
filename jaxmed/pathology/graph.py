"""Region graphs as ``jraph.GraphsTuple``, batched and padded to power-of-two buckets.

Nodes are a dict ``{"x": [N, F] features, "area": [N] pixels, "pos": [N, 2]
centroid (row, col)}``; edges are both directions of each undirected
adjacency (``senders``/``receivers``), with ``edges = None``. Padding (jraph
``pad_with_graphs``) appends one padding graph that owns the padding nodes and
edges; padded edges point at a padding node, so they never reach a real one.
:func:`pad_to_bucket` rounds node and edge counts up to powers of two, so a
jitted step compiles once per bucket instead of once per slide.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import jraph
import numpy as np


def region_graph(features: np.ndarray, edges: np.ndarray, area: np.ndarray, centroid: np.ndarray
                 ) -> jraph.GraphsTuple:
  """One slide's graph from node features ``[N, F]``, undirected edges ``[E, 2]``, area ``[N]``, centroid ``[N, 2]``."""
  edges = np.asarray(edges, np.int32).reshape(-1, 2)
  senders = np.concatenate([edges[:, 0], edges[:, 1]])
  receivers = np.concatenate([edges[:, 1], edges[:, 0]])
  n = len(features)
  if len(edges) and (edges.min() < 0 or edges.max() >= n):
    raise ValueError(f"region_graph: edge ids must lie in [0, {n}); got [{edges.min()}, {edges.max()}]")
  nodes = {"x": np.asarray(features, np.float32), "area": np.asarray(area, np.float32),
           "pos": np.asarray(centroid, np.float32)}
  return jraph.GraphsTuple(nodes=nodes, edges=None, senders=senders, receivers=receivers,
                           n_node=np.asarray([n], np.int32), n_edge=np.asarray([len(senders)], np.int32),
                           globals=None)


def next_pow2(n: int) -> int:
  return 1 << max(int(n) - 1, 0).bit_length()


def pad_to_bucket(graph: jraph.GraphsTuple, *, min_nodes: int = 8, min_edges: int = 8) -> jraph.GraphsTuple:
  """Pads to ``next_pow2(nodes + 1)`` nodes, ``next_pow2(edges)`` edges and one extra (padding) graph."""
  n_node = next_pow2(max(int(np.sum(graph.n_node)) + 1, min_nodes))
  n_edge = next_pow2(max(int(np.sum(graph.n_edge)), min_edges))
  return jraph.pad_with_graphs(graph, n_node, n_edge, len(graph.n_node) + 1)


def batch_and_pad(graphs: Sequence[jraph.GraphsTuple], **kw) -> jraph.GraphsTuple:
  """``jraph.batch`` then :func:`pad_to_bucket`."""
  return pad_to_bucket(jraph.batch(list(graphs)), **kw)


def masks(graph: jraph.GraphsTuple) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Boolean ``(node_mask [N], edge_mask [E], graph_mask [G])``: True for real entries."""
  return (jraph.get_node_padding_mask(graph), jraph.get_edge_padding_mask(graph),
          jraph.get_graph_padding_mask(graph))


def node_graph_index(graph: jraph.GraphsTuple) -> jnp.ndarray:
  """``[N]`` graph id of each node (static length: the padded node count)."""
  n = graph.nodes["x"].shape[0]
  return jnp.repeat(jnp.arange(len(graph.n_node)), graph.n_node, total_repeat_length=n)
