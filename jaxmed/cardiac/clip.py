"""Image-tabular contrastive alignment (ViTa stage 2): SimCLR projection heads and the symmetric CLIP loss.

``clip_loss`` takes the *global* batch of embeddings. Under ``jax.jit`` with
a batch-sharded ``NamedSharding`` the ``[B, B]`` logits need every device's
embeddings: XLA all-gathers ``z_tab`` before the matmul, so each sample sees
all ``B - 1`` negatives of the global batch, not just its device's
(``tests/cardiac/test_clip.py`` checks 8 simulated devices against one).
:func:`clip_loss_shard_map` is the explicit per-device form of the same
computation (all-gather, local rows of the logits, mean over devices).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class ProjectionHead(nn.Module):
  """SimCLR head ``Dense - ReLU - Dense``: ``[B, D] -> [B, out]`` (normalised in the loss)."""
  hidden: int = 128
  out: int = 64

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.out)(nn.relu(nn.Dense(self.hidden)(x)))


def l2_normalise(z: jax.Array, eps: float = 1e-8) -> jax.Array:
  z = z.astype(jnp.float32)
  return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), eps)


def clip_loss(z_img: jax.Array, z_tab: jax.Array, temperature: float = 0.1) -> jax.Array:
  """Symmetric InfoNCE: ``(CE(logits, diag) + CE(logits^T, diag)) / 2``, ``logits = <z_i, z_t> / tau``.

  ``z_img``, ``z_tab``: ``[B, E]`` (normalised here). ViTa: ``tau = 0.1``.
  """
  zi, zt = l2_normalise(z_img), l2_normalise(z_tab)
  logits = zi @ zt.T / temperature
  labels = jnp.arange(zi.shape[0])
  a = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  b = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
  return 0.5 * (a + b)


def clip_loss_shard_map(z_img: jax.Array, z_tab: jax.Array, mesh, temperature: float = 0.1,
                        axes: tuple[str, ...] = ("data",)) -> jax.Array:
  """:func:`clip_loss` with explicit per-device code: each device all-gathers both embeddings, scores its own
  rows against the global batch in both directions, and the per-device means are averaged."""
  from jax.sharding import PartitionSpec as P

  def local(zi, zt):
    gi = jax.lax.all_gather(l2_normalise(zi), axes, tiled=True)
    gt = jax.lax.all_gather(l2_normalise(zt), axes, tiled=True)
    offset = jax.lax.axis_index(axes) * zi.shape[0]
    rows = offset + jnp.arange(zi.shape[0])
    li = l2_normalise(zi) @ gt.T / temperature    # image rows vs all tabular
    lt = l2_normalise(zt) @ gi.T / temperature    # tabular rows vs all images
    loss = 0.5 * (optax.softmax_cross_entropy_with_integer_labels(li, rows).mean()
                  + optax.softmax_cross_entropy_with_integer_labels(lt, rows).mean())
    return jax.lax.pmean(loss, axes)

  spec = P(axes)
  return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec), out_specs=P(), check_vma=False)(z_img, z_tab)
