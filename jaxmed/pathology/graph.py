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
  """Boolean ``(node_mask [N], edge_mask [E], graph_mask [G])``: True for real entries; works under ``jit``.

  jraph's convention: the padding graph is the last graph with nodes, followed
  by empty ones, so the graph must carry at least one padding node (as
  :func:`pad_to_bucket` and :func:`stack_graphs` ensure). jraph's own
  ``get_*_padding_mask`` helpers need concrete counts; these use ``jnp`` only.
  """
  n_node = jnp.asarray(graph.n_node)
  num_graphs = n_node.shape[0]
  padding_graph = jnp.max(jnp.where(n_node > 0, jnp.arange(num_graphs), 0))
  graph_mask = jnp.arange(num_graphs) < padding_graph
  node_mask = node_graph_index(graph) < padding_graph
  edge_graph = jnp.repeat(jnp.arange(num_graphs), jnp.asarray(graph.n_edge),
                          total_repeat_length=graph.senders.shape[0])
  return node_mask, edge_graph < padding_graph, graph_mask


def node_graph_index(graph: jraph.GraphsTuple) -> jnp.ndarray:
  """``[N]`` graph id of each node (static length: the padded node count)."""
  n = graph.nodes["x"].shape[0]
  return jnp.repeat(jnp.arange(len(graph.n_node)), graph.n_node, total_repeat_length=n)


def stack_graphs(graphs: Sequence[jraph.GraphsTuple], *, n_node: int | None = None, n_edge: int | None = None
                 ) -> dict[str, np.ndarray]:
  """Pads every single-slide graph to the same bucket and stacks them: arrays ``[B, ...]``.

  This is the layout for a data-parallel step (``vmap`` over slides, batch
  split over the mesh): ``x [B, N, F]``, ``area [B, N]``, ``pos [B, N, 2]``,
  ``senders``/``receivers [B, E]``, ``n_node``/``n_edge [B, 2]`` (the slide,
  then its padding graph). The bucket defaults to the largest slide's.
  """
  n_node = n_node or next_pow2(max(int(np.sum(g.n_node)) for g in graphs) + 1)
  n_edge = n_edge or next_pow2(max(max(int(np.sum(g.n_edge)) for g in graphs), 8))
  padded = [jraph.pad_with_graphs(g, n_node, n_edge, 2) for g in graphs]
  out = {k: np.stack([np.asarray(p.nodes[k]) for p in padded]) for k in ("x", "area", "pos")}
  for k in ("senders", "receivers", "n_node", "n_edge"):
    out[k] = np.stack([np.asarray(getattr(p, k)) for p in padded]).astype(np.int32)
  return out


def unstack_graph(arrays: dict) -> jraph.GraphsTuple:
  """The ``GraphsTuple`` of one slide from a row of :func:`stack_graphs` (inside ``vmap``)."""
  return jraph.GraphsTuple(nodes={k: arrays[k] for k in ("x", "area", "pos")}, edges=None,
                           senders=arrays["senders"], receivers=arrays["receivers"], n_node=arrays["n_node"],
                           n_edge=arrays["n_edge"], globals=None)
