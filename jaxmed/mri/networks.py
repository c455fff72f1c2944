"""SSFL-Recon's networks: a complex 2D+t UNet, the unrolled reconstruction, the feature extractor and its head.

Unrolled reconstruction (S iterations, weights not shared):
``x <- x - (tau_i / S) * UNet_i([x, f_i])`` then the gradient-step data
consistency ``x <- x - lambda * A^H (A x - y)``, with ``tau_i = 0.1`` and
``lambda = 1`` at initialisation and ``lambda >= 0`` (its absolute value is
used). ``f_i`` (optional) are features concatenated on the channel axis at
the UNet's bottleneck.

Feature extractor: an unrolled network of the same kind without features;
``f_i`` is UNet_i's encoder (bottleneck) output at iteration ``i``. The
projection head maps the last feature to 64-d: global max pooling (by
modulus) -> [Re, Im] -> Dense 64, BatchNorm, ReLU, Dense 64, BatchNorm.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmed.mri.layers import (ComplexConv, ComplexConv2Dt, ComplexConvTranspose, ModReLU, complex_instance_norm,
                               magnitude_max_pool)
from jaxmed.mri.sense import data_consistency


class _Block(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    for _ in range(2):
      x = ModReLU()(complex_instance_norm(ComplexConv2Dt(self.features)(x)))
    return x


class ComplexUNet(nn.Module):
  """``x [B, T, H, W, Cin]`` complex -> ``(out [B, T, H, W, 1], bottleneck [B, T, H/2^L, W/2^L, F 2^L])``.

  ``features`` (optional) ``[B, T, H/2^L, W/2^L, Ff]`` are concatenated at the bottleneck.
  """

  filters: int = 12
  levels: int = 2

  @nn.compact
  def __call__(self, x, features=None):
    skips = []
    for level in range(self.levels):
      x = _Block(self.filters * 2 ** level)(x)
      skips.append(x)
      x = magnitude_max_pool(x)
    bottleneck = _Block(self.filters * 2 ** self.levels)(x)
    x = bottleneck if features is None else jnp.concatenate([bottleneck, features], axis=-1)
    for level in reversed(range(self.levels)):
      x = ComplexConvTranspose(self.filters * 2 ** level)(x)
      x = _Block(self.filters * 2 ** level)(jnp.concatenate([x, skips[level]], axis=-1))
    return ComplexConv(1, (1,))(x.reshape(-1, 1, x.shape[-1])).reshape(*x.shape[:-1], 1), bottleneck


class UnrolledRecon(nn.Module):
  """``(x0 [B, T, H, W], y [B, T, C, H, W], maps [B, C, H, W], mask [B, T, ...], features) -> x [B, T, H, W]``.

  Also returns the per-iteration bottleneck features (for the extractor).
  """

  iterations: int = 5
  filters: int = 12
  levels: int = 2

  @nn.compact
  def __call__(self, x0, y, maps, mask, features: Sequence | None = None):
    dc = jax.vmap(data_consistency, in_axes=(0, 0, 0, 0, None))
    x = x0
    bottlenecks = []
    for i in range(self.iterations):
      tau = self.param(f"tau_{i}", nn.initializers.constant(0.1), ())
      lam = jnp.abs(self.param(f"lambda_{i}", nn.initializers.constant(1.0), ()))
      f = None if features is None else features[i]
      d, b = ComplexUNet(self.filters, self.levels, name=f"unet_{i}")(x[..., None], f)
      bottlenecks.append(b)
      x = x - (tau / self.iterations) * d[..., 0]
      x = dc(x, y, maps, mask, lam)
    return x, bottlenecks


class ProjectionHead(nn.Module):
  """Bottleneck ``[B, T, h, w, F]`` complex -> ``[B, 64]``: max-|.| pool, [Re, Im], Dense-BN-ReLU-Dense-BN."""

  dim: int = 64

  @nn.compact
  def __call__(self, f, *, train: bool = True):
    b, c = f.shape[0], f.shape[-1]
    flat = f.reshape(b, -1, c)
    idx = jnp.argmax(jnp.abs(flat), axis=1)
    pooled = jnp.take_along_axis(flat, idx[:, None], axis=1)[:, 0]
    h = jnp.concatenate([jnp.real(pooled), jnp.imag(pooled)], axis=-1)
    h = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(self.dim)(h)))
    return nn.BatchNorm(use_running_average=not train)(nn.Dense(self.dim)(h))
