"""LKU-Net (Jia et al., MICCAI 2022): a UNet whose encoder alternates strided convolutions and large-kernel blocks.

The layout follows the official LKU-Net: an input block and one more block at
full resolution, then per level a stride-2 ``3^n`` convolution that doubles
the channels (up to ``8 * start``) followed by a large-kernel block; the
decoder upsamples with a ``2^n`` stride-2 transposed convolution, concatenates
the encoder feature of that level and applies two ``3^n`` convolutions. Every
convolution is followed by PReLU; the flow head is a near-zero ``3^n``
convolution. Shapes: ``(moving, fixed)`` ``[B, *S, 1]`` -> field ``[B, *S, n]``,
with every spatial size divisible by ``2**levels``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxmed.registration.networks import LKBlock


class ConvPReLU(nn.Module):
  """``3^n`` convolution (optionally strided) then PReLU, LKU-Net's ``encoder`` unit."""
  features: int
  ndim: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, (3,) * self.ndim, strides=(self.stride,) * self.ndim, padding="SAME")(x)
    return nn.PReLU(negative_slope_init=0.2)(x)


class LKUNet(nn.Module):
  """Attributes: ``ndim``; ``start`` channels (official: 8 or 16); ``levels`` downsamplings; ``kernel`` (5)."""
  ndim: int = 2
  start: int = 8
  levels: int = 4
  kernel: int = 5
  remat: bool = False

  @nn.compact
  def __call__(self, moving, fixed):
    factor = 2 ** self.levels
    if any(s % factor for s in moving.shape[1:-1]):
      raise ValueError(f"LKUNet: spatial shape {moving.shape[1:-1]} must be divisible by {factor}")
    x = jnp.concatenate([moving, fixed], axis=-1)
    x = ConvPReLU(self.start, self.ndim)(x)
    x = ConvPReLU(self.start, self.ndim)(x)
    skips = [x]
    widths = [min(self.start * 2 ** (i + 1), self.start * 8) for i in range(self.levels)]
    level = nn.remat(_EncoderLevel) if self.remat else _EncoderLevel
    for w in widths:
      x = level(w, self.ndim, self.kernel)(x)
      skips.append(x)
    skips.pop()
    for w, skip in zip(reversed([self.start] + widths[:-1]), reversed(skips)):
      x = nn.ConvTranspose(w, (2,) * self.ndim, strides=(2,) * self.ndim)(x)
      x = jnp.concatenate([x, skip], axis=-1)
      x = ConvPReLU(w, self.ndim)(x)
      x = ConvPReLU(w, self.ndim)(x)
    return nn.Conv(self.ndim, (3,) * self.ndim, padding="SAME", name="flow",
                   kernel_init=nn.initializers.normal(1e-5), bias_init=nn.initializers.zeros)(x)


class _EncoderLevel(nn.Module):
  features: int
  ndim: int
  kernel: int

  @nn.compact
  def __call__(self, x):
    x = ConvPReLU(self.features, self.ndim, stride=2)(x)
    return LKBlock(self.features, self.ndim, self.kernel)(x)
