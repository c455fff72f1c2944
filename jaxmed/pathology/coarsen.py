"""Learned adaptive coarsening: merge adjacent regions whose learned embeddings are similar.

One round, with static shapes (``N`` node slots, ``E`` edge slots) so it runs
inside ``jit``:

1. ``s_ij = cos(z_i, z_j)`` on every real edge, from learned node embeddings ``z``.
2. Keep the edges with ``s_ij > threshold``; the connected components over
   the kept edges (min-label propagation with pointer jumping, in a
   ``lax.while_loop``) form the assignment ``C`` (node -> component). A
   component lives in the slot of its smallest node id, so the coarse graph
   keeps ``N`` slots and a node mask.
3. Coarse features are the area-weighted means of their members; the coarse
   area is the sum. The coarse adjacency is binarised ``C^T A C`` without its
   diagonal: edge ``(C(i), C(j))`` for every fine edge across components,
   with duplicates masked.

Gradients. The merge decision is discrete (no gradient through the
threshold). So that the embedding network still learns *which* regions to
merge, the pooling weights carry a straight-through gate: member ``i`` of a
merged node is weighted by ``area_i * (1 + g_i - stop_gradient(g_i))`` with
``g_i = mean over i's kept edges of sigmoid((s_ij - threshold) / tau)``. The
forward value is exactly the area-weighted mean; the backward pass tells the
embeddings whether pulling a region into (or out of) its neighbour's node
would lower the loss. A soft assignment (DiffPool-style) was not chosen: it
needs a fixed number of clusters, and the method's point is a data-dependent
number of nodes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Coarse(NamedTuple):
  x: jnp.ndarray          # [N, F] pooled features (zero in empty slots)
  area: jnp.ndarray       # [N] summed area
  pos: jnp.ndarray        # [N, 2] area-weighted centroid
  node_mask: jnp.ndarray  # [N] True for a live coarse node
  senders: jnp.ndarray    # [E] coarse edge ends (slot ids)
  receivers: jnp.ndarray  # [E]
  edge_mask: jnp.ndarray  # [E] True for a unique coarse edge between two different live nodes
  assignment: jnp.ndarray  # [N] fine node -> coarse slot (padding nodes map to themselves)
  keep: jnp.ndarray       # [E] the fine edges that were merged across


def connected_components(senders, receivers, keep, num_nodes: int) -> jnp.ndarray:
  """``[N]`` smallest node id of each node's component over the edges with ``keep`` (edges as given; pass both directions)."""
  big = jnp.int32(num_nodes)

  def body(carry):
    label, _ = carry
    incoming = jnp.full((num_nodes,), big).at[receivers].min(jnp.where(keep, label[senders], big))
    outgoing = jnp.full((num_nodes,), big).at[senders].min(jnp.where(keep, label[receivers], big))
    new = jnp.minimum(label, jnp.minimum(incoming, outgoing))
    new = new[new]  # pointer jumping: follow the representative's representative
    return new, jnp.any(new != label)

  label, _ = jax.lax.while_loop(lambda c: c[1], body, (jnp.arange(num_nodes, dtype=jnp.int32), jnp.bool_(True)))
  return label


def edge_similarity(z, senders, receivers) -> jnp.ndarray:
  """Cosine similarity ``[E]`` of the embeddings at each edge's two ends."""
  zn = z * jax.lax.rsqrt(jnp.sum(z * z, axis=-1, keepdims=True) + 1e-12)  # finite gradient at z = 0 (padding)
  return (zn[senders] * zn[receivers]).sum(-1)


def coarsen(x, area, pos, z, senders, receivers, node_mask, edge_mask, *, threshold: float,
            tau: float = 0.1, keep=None) -> Coarse:
  """One coarsening round (module docstring). Shapes: ``x [N, F]``, ``area [N]``, ``pos [N, 2]``, ``z [N, D]``.

  ``keep`` ``[E]``: reuse the merge decisions of an earlier call (``Coarse.keep``)
  instead of thresholding ``z``, e.g. to hold the partition fixed along an
  Integrated-Gradients path.
  """
  n = x.shape[0]
  sim = edge_similarity(z, senders, receivers)
  real = edge_mask & node_mask[senders] & node_mask[receivers]
  keep = real & (sim > threshold) if keep is None else real & keep
  comp = connected_components(senders, receivers, keep, n)
  gate_e = jnp.where(keep, jax.nn.sigmoid((sim - threshold) / tau), 0.0)
  kept_in = jax.ops.segment_sum(keep.astype(x.dtype), receivers, n)
  gate = jax.ops.segment_sum(gate_e, receivers, n) / jnp.maximum(kept_in, 1.0)
  w = jnp.where(node_mask, area, 0.0) * (1.0 + gate - jax.lax.stop_gradient(gate))
  total = jax.ops.segment_sum(w, comp, n)
  denom = jnp.where(total > 0, total, 1.0)[:, None]
  xc = jax.ops.segment_sum(w[:, None] * x, comp, n) / denom
  posc = jax.ops.segment_sum(w[:, None] * pos, comp, n) / denom
  area_c = jax.ops.segment_sum(jnp.where(node_mask, area, 0.0), comp, n)
  live = node_mask & (comp == jnp.arange(n))
  cs, cr = comp[senders], comp[receivers]
  cross = real & (cs != cr)
  # unique (cs, cr) pairs: sort the keys, keep each first occurrence
  key = jnp.where(cross, cs * n + cr, n * n)
  order = jnp.argsort(key)
  sorted_key = key[order]
  first = jnp.concatenate([jnp.ones((1,), bool), sorted_key[1:] != sorted_key[:-1]]) & (sorted_key < n * n)
  unique = jnp.zeros_like(cross).at[order].set(first)
  return Coarse(xc, area_c, posc, live, cs, cr, unique, comp, keep)
