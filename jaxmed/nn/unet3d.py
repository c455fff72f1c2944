"""A 3D U-Net in the nnU-Net style: conv-instance norm-leaky ReLU blocks, strided-conv downsampling,
transposed-conv upsampling, skip concatenation and optional deep supervision."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConvBlock3D(nn.Module):
  """Two (3x3x3 conv, instance norm, leaky ReLU 0.01); the first may stride 2 (nnU-Net's downsampling)."""
  width: int
  stride: int = 1
  negative_slope: float = 0.01

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for k in range(2):
      s = self.stride if k == 0 else 1
      x = nn.Conv(self.width, (3, 3, 3), strides=(s, s, s), padding="SAME")(x)
      x = nn.InstanceNorm(epsilon=1e-5)(x.astype(jnp.float32))
      x = nn.leaky_relu(x, self.negative_slope)
    return x


class UNet3D(nn.Module):
  """``[B, D, H, W, C] -> logits [B, D, H, W, num_classes]``.

  ``widths``: channels per resolution level (level ``i`` is ``2**i`` times
  coarser); D, H, W must be divisible by ``2 ** (len(widths) - 1)``. With
  ``deep_supervision``, returns ``(logits, aux)`` where ``aux`` holds the
  logits of the coarser decoder levels, coarsest first (nnU-Net weights
  them ``1/2^k`` against targets downsampled by ``2^k``).
  """
  num_classes: int = 2
  widths: Sequence[int] = (16, 32, 64)
  deep_supervision: bool = False
  negative_slope: float = 0.01

  @nn.compact
  def __call__(self, x: jax.Array):
    skips = []
    for i, w in enumerate(self.widths):
      x = ConvBlock3D(w, stride=1 if i == 0 else 2, negative_slope=self.negative_slope)(x)
      skips.append(x)
    x = skips.pop()
    aux = []
    for w in reversed(self.widths[:-1]):
      if self.deep_supervision:
        aux.append(nn.Conv(self.num_classes, (1, 1, 1))(x))
      x = nn.ConvTranspose(w, (2, 2, 2), strides=(2, 2, 2))(x)
      x = ConvBlock3D(w, negative_slope=self.negative_slope)(jnp.concatenate([x, skips.pop()], axis=-1))
    logits = nn.Conv(self.num_classes, (1, 1, 1))(x)
    return (logits, aux) if self.deep_supervision else logits
