"""ViTa stage 3: downstream heads on the shared representation.

* :class:`MLPHead` for the phenotypes (Huber loss on z-scored targets) and
  the disease (binary cross-entropy with a positive-class weight);
* :class:`UNETRDecoder`, a UNETR-style segmentation decoder: encoder patch
  tokens from three depths are reshaped to their (t, h, w) grid, upsampled by
  transposed convolutions with skip fusion, joined with a full-resolution
  convolution of the cine, and mapped to per-pixel class logits.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmed.cardiac.tokens import grid_shape


class MLPHead(nn.Module):
  """``[B, D] -> [B, out]``: LayerNorm, Dense, GELU, Dense."""
  out: int
  hidden: int = 64

  @nn.compact
  def __call__(self, x):
    x = nn.LayerNorm()(x.astype(jnp.float32))
    return nn.Dense(self.out)(nn.gelu(nn.Dense(self.hidden)(x), approximate=False))


def huber_loss(pred: jax.Array, target: jax.Array, delta: float = 1.0) -> jax.Array:
  """Mean Huber loss (``optax.huber_loss``) over all phenotypes and subjects."""
  return optax.huber_loss(pred.astype(jnp.float32), target.astype(jnp.float32), delta=delta).mean()


def weighted_bce(logits: jax.Array, labels: jax.Array, pos_weight: float) -> jax.Array:
  """``-mean(w y log s(x) + (1 - y) log(1 - s(x)))`` with ``w = pos_weight`` (as ``BCEWithLogitsLoss``)."""
  logits, labels = logits.astype(jnp.float32), labels.astype(jnp.float32)
  return -jnp.mean(pos_weight * labels * jax.nn.log_sigmoid(logits) + (1 - labels) * jax.nn.log_sigmoid(-logits))


class _Conv(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x):
    for _ in range(2):
      x = nn.leaky_relu(nn.InstanceNorm()(nn.Conv(self.width, (3, 3, 3))(x).astype(jnp.float32)), 0.01)
    return x


class UNETRDecoder(nn.Module):
  """``(hidden [depth x [B, L, D]], last [B, L, D], cine [B, S, T, H, W]) -> logits [B, S, T, H, W, K]``.

  ``hidden`` are the encoder's per-block patch tokens; the decoder uses the
  last tokens and two shallower levels (``skip_blocks``). The patch's
  spatial size must be 8 (three 2x upsamplings); time is restored by
  repeating each temporal token ``patch[0]`` times.
  """
  shape: Sequence[int]
  patch: Sequence[int] = (5, 8, 8)
  num_classes: int = 4
  width: int = 16
  skip_blocks: Sequence[int] = (1, 2)

  @nn.compact
  def __call__(self, hidden, last, cine):
    s, gt, gh, gw = grid_shape(tuple(self.shape), tuple(self.patch))
    if tuple(self.patch[1:]) != (8, 8):
      raise ValueError(f"UNETRDecoder: the spatial patch must be (8, 8), got {tuple(self.patch[1:])}")
    b = cine.shape[0]

    def grid(tokens):   # [B, L, D] -> [B*S, T, gh, gw, D]
      g = tokens.reshape(b * s, gt, gh, gw, tokens.shape[-1])
      return jnp.repeat(g, self.patch[0], axis=1)

    x = _Conv(4 * self.width)(grid(last))
    for level, blk in enumerate(sorted(self.skip_blocks, reverse=True)):
      width = self.width * 2 ** (1 - level)
      x = nn.ConvTranspose(width, (1, 2, 2), strides=(1, 2, 2))(x)
      f = 2 ** (level + 1)
      skip = nn.ConvTranspose(width, (1, f, f), strides=(1, f, f))(grid(hidden[blk]))
      x = _Conv(width)(jnp.concatenate([x, skip], -1))
    x = nn.ConvTranspose(self.width, (1, 2, 2), strides=(1, 2, 2))(x)
    img = _Conv(self.width)(cine.reshape(b * s, *cine.shape[2:], 1))
    x = _Conv(self.width)(jnp.concatenate([x, img], -1))
    logits = nn.Conv(self.num_classes, (1, 1, 1))(x)
    return logits.reshape(b, s, *logits.shape[1:])
