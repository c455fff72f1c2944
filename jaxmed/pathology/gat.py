"""Multi-head graph attention (Velickovic et al., 2018) over ``senders -> receivers`` with jraph's segment softmax.

For receiver ``i`` and its incoming edges ``j -> i`` (plus the self-loop ``i ->
i``): ``e_ij = LeakyReLU_0.2(a_src . W h_j + a_dst . W h_i)``, ``alpha_ij =
softmax_j(e_ij)`` (``jraph.segment_softmax`` over the receiver), and ``h_i' =
sum_j alpha_ij W h_j``, per head; heads are concatenated (or averaged).
``edge_mask`` drops edges (padding, or duplicates after coarsening) from the
softmax, so every real node's attention sums to 1 over its real incoming
edges and its self-loop.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph


class GATLayer(nn.Module):
  """``(h [N, F], senders [E], receivers [E], edge_mask [E]) -> [N, heads * features]`` (or ``[N, features]``)."""

  features: int
  heads: int = 4
  concat: bool = True
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, h, senders, receivers, edge_mask=None, return_attention: bool = False):
    n = h.shape[0]
    loops = jnp.arange(n, dtype=jnp.int32)
    senders = jnp.concatenate([jnp.asarray(senders, jnp.int32), loops])
    receivers = jnp.concatenate([jnp.asarray(receivers, jnp.int32), loops])
    valid = jnp.ones(senders.shape, bool) if edge_mask is None else jnp.concatenate(
        [edge_mask, jnp.ones((n,), bool)])
    wh = nn.Dense(self.heads * self.features, use_bias=False)(h).reshape(n, self.heads, self.features)
    init = nn.initializers.glorot_uniform()
    a_src = self.param("a_src", init, (self.heads, self.features))
    a_dst = self.param("a_dst", init, (self.heads, self.features))
    logits = (wh * a_src).sum(-1)[senders] + (wh * a_dst).sum(-1)[receivers]  # [E + N, heads]
    logits = jax.nn.leaky_relu(logits, self.negative_slope).astype(jnp.float32)
    logits = jnp.where(valid[:, None], logits, -1e30)
    alpha = jraph.segment_softmax(logits, receivers, n) * valid[:, None]
    out = jax.ops.segment_sum(alpha[..., None] * wh[senders], receivers, n)  # [N, heads, features]
    out = out.reshape(n, -1) if self.concat else out.mean(1)
    out = out + self.param("bias", nn.initializers.zeros, out.shape[-1:])
    if return_attention:
      return out, {"alpha": alpha, "senders": senders, "receivers": receivers, "valid": valid}
    return out
