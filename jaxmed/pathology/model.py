"""The region-graph network: GAT layers with learned adaptive coarsening between them, attention readout, two heads.

  x [N, F] --Dense--> h --GAT--> (--coarsen--> --GAT-->) x rounds --gated attention readout--> g [G, H]
  g --> stage logits [G, C] and Cox risk [G]

Works on a padded, batched ``jraph.GraphsTuple`` (``jaxmed.pathology.graph``);
node slots keep their graph through coarsening (a coarse node lives in the
slot of its smallest member), so the readout uses the same node -> graph
index before and after.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from jaxmed.pathology.coarsen import coarsen
from jaxmed.pathology.gat import GATLayer
from jaxmed.pathology.graph import masks, node_graph_index


class RegionGraphNet(nn.Module):
  num_classes: int
  hidden: int = 64
  heads: int = 4
  coarsen_rounds: int = 1
  threshold: float = 0.9
  embed_dim: int = 16
  dropout: float = 0.0

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple, x=None, *, keep=None, train: bool = False) -> dict:
    """Logits ``[G, C]``, risk ``[G]``, live node counts ``[G]``, and per round the assignment and kept edges.

    ``x`` replaces ``graph.nodes["x"]``; ``keep`` (the ``"keep"`` list of an
    earlier output) fixes the merge decisions. Integrated Gradients uses both:
    with the partition frozen at the input, the output is continuous along
    the path and completeness holds.
    """
    x = graph.nodes["x"] if x is None else x
    node_mask, edge_mask, _ = masks(graph)
    num_graphs = graph.n_node.shape[0]
    gidx = node_graph_index(graph)
    s, r = graph.senders, graph.receivers
    area, pos = graph.nodes["area"], graph.nodes["pos"]
    head_dim = self.hidden // self.heads
    h = nn.elu(nn.Dense(self.hidden)(x))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h + nn.elu(GATLayer(head_dim, self.heads)(h, s, r, edge_mask))
    assignments, kept = [], []
    for k in range(self.coarsen_rounds):
      z = nn.Dense(self.embed_dim)(h)
      c = coarsen(h, area, pos, z, s, r, node_mask, edge_mask, threshold=self.threshold,
                  keep=None if keep is None else keep[k])
      h, area, pos, node_mask, s, r, edge_mask = c.x, c.area, c.pos, c.node_mask, c.senders, c.receivers, c.edge_mask
      assignments.append(c.assignment)
      kept.append(c.keep)
      h = h + nn.elu(GATLayer(head_dim, self.heads)(h, s, r, edge_mask))
    gate = jnp.tanh(nn.Dense(self.hidden)(h)) * jax.nn.sigmoid(nn.Dense(self.hidden)(h))
    logits = nn.Dense(1)(gate)[:, 0].astype(jnp.float32)
    a = jraph.segment_softmax(jnp.where(node_mask, logits, -1e30), gidx, num_graphs) * node_mask
    g = jax.ops.segment_sum(a[:, None] * h, gidx, num_graphs)
    return {"logits": nn.Dense(self.num_classes)(g), "risk": nn.Dense(1)(g)[:, 0],
            "num_nodes": jax.ops.segment_sum(node_mask.astype(jnp.float32), gidx, num_graphs),
            "assignments": assignments, "keep": kept, "node_mask": node_mask}
