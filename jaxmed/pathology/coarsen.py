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

Gradients (a straight-through estimator). The merge decision is discrete,
so the forward pass is exactly the hard partition above. The backward pass is
that of a *soft merge* driven by ``p_ij = sigmoid((s_ij - threshold) / tau)``
on every real edge, kept or not:

  x~_c = (sum_{i in c} w_i a_i x_i + sum_{(j -> i), i in c, j not in c} p_ij a_j x_j)
         / (the same sums without x)

with ``w_i = 1`` for the component's representative and ``w_i`` = the mean
``p`` over ``i``'s kept edges for the other members. Raising ``p_ij`` on an
edge that crosses components pulls ``j`` into ``i``'s node (the first-order
effect of merging them); lowering ``w_i`` of a merged member pushes it out
(the first-order effect of a split, seen from the node that stays). The
pooled features are ``x_c + x~_c - stop_gradient(x~_c)`` with ``x~`` built from
``stop_gradient(x)``: the forward value and the gradient with respect to
``x`` are the hard partition's; the embeddings ``z`` receive the soft merge's
gradient, which is nonzero both for an unmerged pair whose merge would lower
the loss (sign: towards merging) and for a merged pair whose split would.
(An earlier gate ``area_i * (1 + g_i - stop_gradient(g_i))`` scaled both
members of a merged pair equally, so the component mean, and with it every
gradient to ``z``, was exactly zero.) A DiffPool-style soft assignment was
not chosen: it fixes the number of clusters, and the method's point is a
data-dependent number of nodes.
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
  Integrated-Gradients path; the merge estimator is then off, so every
  gradient is the exact one of the fixed partition.
  """
  n = x.shape[0]
  sim = edge_similarity(z, senders, receivers)
  real = edge_mask & node_mask[senders] & node_mask[receivers]
  fixed = keep is not None
  keep = real & (keep if fixed else sim > threshold)
  comp = connected_components(senders, receivers, keep, n)
  area_m = jnp.where(node_mask, area, 0.0)
  total = jax.ops.segment_sum(area_m, comp, n)
  denom = jnp.where(total > 0, total, 1.0)[:, None]
  xc = jax.ops.segment_sum(area_m[:, None] * x, comp, n) / denom
  posc = jax.ops.segment_sum(area_m[:, None] * pos, comp, n) / denom
  if not fixed:  # a given partition is not a function of z: the exact gradient is the hard one (IG needs that)
    xc = xc + _soft_merge_delta(x, area_m, sim, keep, real, comp, senders, receivers, threshold, tau)
  area_c = total
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


def _soft_merge_delta(x, area, sim, keep, real, comp, senders, receivers, threshold, tau):
  """``x~ - stop_gradient(x~)`` of the soft merge in the module docstring: zero forward, the estimator backward."""
  n = x.shape[0]
  xs = jax.lax.stop_gradient(x)
  p = jax.nn.sigmoid((sim - threshold) / tau)
  kept_in = jax.ops.segment_sum(keep.astype(x.dtype), receivers, n)
  member = jax.ops.segment_sum(jnp.where(keep, p, 0.0), receivers, n) / jnp.maximum(kept_in, 1.0)
  w_self = area * jnp.where(comp == jnp.arange(n), 1.0, member)
  cross = real & (comp[senders] != comp[receivers])
  w_edge = jnp.where(cross, p * area[senders], 0.0)  # j = sender pulled into the receiver's component
  target = comp[receivers]
  num = jax.ops.segment_sum(w_self[:, None] * xs, comp, n) + jax.ops.segment_sum(w_edge[:, None] * xs[senders],
                                                                                target, n)
  den = jax.ops.segment_sum(w_self, comp, n) + jax.ops.segment_sum(w_edge, target, n)
  soft = num / jnp.where(den > 0, den, 1.0)[:, None]
  return soft - jax.lax.stop_gradient(soft)
