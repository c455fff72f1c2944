"""Complex-valued layers for 2D+t data ``[B, T, H, W, C]`` (complex64), as in SSFL-Recon's complex UNet.

* :class:`ComplexConv`: ``(Wr + i Wi)(xr + i xi)`` with two real convolutions;
* :class:`ComplexConv2Dt`: factorised 2D+t, a ``(1, k, k)`` spatial then a
  ``(3, 1, 1)`` temporal complex convolution;
* :class:`ComplexConvTranspose`: per-frame transposed convolution (2x upsampling);
* :func:`complex_instance_norm`: subtract the complex mean, divide by the RMS
  modulus, over ``(T, H, W)`` per sample and channel;
* :class:`ModReLU`: ``relu(|z| + b) z / |z|`` with a learned bias per channel;
* :func:`magnitude_max_pool`: in each window keep the entry of largest modulus.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class ComplexConv(nn.Module):
  """A complex convolution over the middle axes of ``[N, *spatial, C]`` (1D or 2D), from two real ones."""

  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | None = None
  transpose: bool = False

  @nn.compact
  def __call__(self, x):
    cls = nn.ConvTranspose if self.transpose else nn.Conv
    re = cls(self.features, tuple(self.kernel_size), self.strides, padding="SAME", use_bias=False, name="re")
    im = cls(self.features, tuple(self.kernel_size), self.strides, padding="SAME", use_bias=False, name="im")
    xr, xi = jnp.real(x), jnp.imag(x)
    bias = self.param("bias", nn.initializers.zeros, (2, self.features))
    return (re(xr) - im(xi) + bias[0]) + 1j * (re(xi) + im(xr) + bias[1])


def _per_frame(layer, x):
  """Applies a 2D layer to every frame of ``[B, T, H, W, C]`` (frames folded into the batch)."""
  b, t = x.shape[:2]
  y = layer(x.reshape(b * t, *x.shape[2:]))
  return y.reshape(b, t, *y.shape[1:])


class ComplexConv2Dt(nn.Module):
  """Spatial ``(1, k, k)`` then temporal ``(kt, 1, 1)`` complex convolution on ``[B, T, H, W, C]``.

  Computed as a 2D convolution over frames folded into the batch, then a 1D
  convolution over time with pixels folded into the batch: the same maps as
  the two 3D convolutions, and about 10x faster on XLA:CPU than a 3D
  convolution with a unit kernel axis.
  """

  features: int
  kernel: int = 5
  kernel_t: int = 3

  @nn.compact
  def __call__(self, x):
    x = _per_frame(ComplexConv(self.features, (self.kernel, self.kernel)), x)
    b, t, h, w, c = x.shape
    xt = x.transpose(0, 2, 3, 1, 4).reshape(b * h * w, t, c)
    xt = ComplexConv(self.features, (self.kernel_t,))(xt)
    return xt.reshape(b, h, w, t, self.features).transpose(0, 3, 1, 2, 4)


class ComplexConvTranspose(nn.Module):
  """Complex transposed convolution per frame: ``[B, T, H, W, C] -> [B, T, 2H, 2W, F]`` (kernel and stride 2)."""

  features: int

  @nn.compact
  def __call__(self, x):
    return _per_frame(ComplexConv(self.features, (2, 2), strides=(2, 2), transpose=True), x)


def complex_instance_norm(x, eps: float = 1e-6):
  """``(x - mean) / rms|x - mean|`` over ``(T, H, W)`` of each sample and channel; ``x [B, T, H, W, C]``."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  xc = x - mean
  rms = jnp.sqrt(jnp.mean(jnp.abs(xc) ** 2, axis=(1, 2, 3), keepdims=True) + eps)
  return xc / rms


class ModReLU(nn.Module):
  @nn.compact
  def __call__(self, z):
    b = self.param("b", nn.initializers.constant(-0.01), (z.shape[-1],))
    mag = jnp.sqrt(jnp.real(z) ** 2 + jnp.imag(z) ** 2 + 1e-12)
    return jax.nn.relu(mag + b) * z / mag


def magnitude_max_pool(x, window=(1, 2, 2)):
  """Max-pooling by modulus over non-overlapping ``window`` on ``(T, H, W)``; ``x [B, T, H, W, C]``."""
  b, t, h, w, c = x.shape
  wt, wh, ww = window
  v = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, c).transpose(0, 1, 3, 5, 7, 2, 4, 6)
  v = v.reshape(b, t // wt, h // wh, w // ww, c, wt * wh * ww)
  idx = jnp.argmax(jnp.abs(v), axis=-1)
  return jnp.take_along_axis(v, idx[..., None], axis=-1)[..., 0]
