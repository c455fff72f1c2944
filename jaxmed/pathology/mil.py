"""Gated attention-based multiple-instance learning (ABMIL; Ilse, Tomczak and Welling, 2018), as in CLAM.

A bag of instance features ``h [N, F]`` (patches of one slide) with a mask:
``a_k = w^T (tanh(V h_k) * sigmoid(U h_k))``, ``softmax`` over the bag's real
instances, and the bag embedding ``z = sum_k a_k h_k``. Bags are batched as
``[B, N, F]`` with ``mask [B, N]``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class GatedAttentionPool(nn.Module):
  """``(h [..., N, F], mask [..., N]) -> (z [..., F], a [..., N])``."""

  hidden: int = 64

  @nn.compact
  def __call__(self, h, mask):
    gate = jnp.tanh(nn.Dense(self.hidden)(h)) * jax.nn.sigmoid(nn.Dense(self.hidden)(h))
    logits = nn.Dense(1)(gate)[..., 0].astype(jnp.float32)
    a = jax.nn.softmax(jnp.where(mask, logits, -1e30), axis=-1) * mask
    return jnp.einsum("...n,...nf->...f", a, h), a


class ABMIL(nn.Module):
  """Instance MLP, gated attention pooling, then stage logits ``[..., num_classes]`` and a Cox risk ``[...]``."""

  num_classes: int
  hidden: int = 64
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, mask, *, train: bool = False):
    h = nn.relu(nn.Dense(self.hidden)(x))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    z, a = GatedAttentionPool(self.hidden)(h, mask)
    return {"logits": nn.Dense(self.num_classes)(z), "risk": nn.Dense(1)(z)[..., 0], "attention": a}
