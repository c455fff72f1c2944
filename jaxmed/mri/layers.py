"""Complex-valued layers for 2D+t data ``[B, T, H, W, C]`` (complex64), as in SSFL-Recon's complex UNet.

* :class:`ComplexConv`: ``(Wr + i Wi)(xr + i xi)`` with two real convolutions;
* :class:`ComplexConvFrames`: a ``(1, k, k)`` spatial complex convolution (per frame);
* :class:`ComplexConvTime`: a ``(kt, 1, 1)`` temporal complex convolution (per pixel);
* :class:`ComplexUpsample`: the official up-sampling, a complex transposed
  convolution with a ``1 x 1 x 1`` kernel and stride ``(2, 2, 2)`` (each input
  voxel lands on the even corner of its 2x2x2 cell, the other seven hold the
  bias) followed by ModReLU;
* :func:`complex_instance_norm`: subtract the complex mean, divide by the RMS
  modulus, over ``(T, H, W)`` per sample and channel;
* :class:`ModReLU`: ``relu(|z| + b) z / |z|`` with a learned bias per channel;
* :func:`magnitude_max_pool`: in each ``(2, 2, 2)`` window keep the entry of largest modulus.
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


class ComplexConvFrames(nn.Module):
  """Spatial ``(1, k, k)`` complex convolution on ``[B, T, H, W, C]``: a 2D convolution over frames folded into
  the batch (the same map as a 3D convolution with a unit time kernel, about 10x faster on XLA:CPU)."""

  features: int
  kernel: int = 5

  @nn.compact
  def __call__(self, x):
    return _per_frame(ComplexConv(self.features, (self.kernel, self.kernel)), x)


class ComplexConvTime(nn.Module):
  """Temporal ``(kt, 1, 1)`` complex convolution on ``[B, T, H, W, C]``: 1D over time, pixels folded into the batch."""

  features: int
  kernel_t: int = 3

  @nn.compact
  def __call__(self, x):
    b, t, h, w, c = x.shape
    xt = x.transpose(0, 2, 3, 1, 4).reshape(b * h * w, t, c)
    xt = ComplexConv(self.features, (self.kernel_t,))(xt)
    return xt.reshape(b, h, w, t, self.features).transpose(0, 3, 1, 2, 4)


class ComplexUpsample(nn.Module):
  """``[B, T, H, W, C] -> [B, 2T, 2H, 2W, F]``: SSFL-Recon's transposed convolution (kernel 1, stride 2) + ModReLU.

  Output voxel ``(2t, 2h, 2w)`` is ``W x[t, h, w] + b``; the other seven voxels
  of each 2x2x2 cell are ``b``. The following 2D+t convolutions fill them in.
  """

  features: int

  @nn.compact
  def __call__(self, x):
    b, t, h, w, c = x.shape
    conv = ComplexConv(self.features, (1,))
    y = conv(x.reshape(-1, 1, c)).reshape(b, t, h, w, self.features)
    bias = conv(jnp.zeros((1, 1, c), x.dtype)).reshape(self.features)  # what a voxel with no input receives
    out = jnp.broadcast_to(bias, (b, 2 * t, 2 * h, 2 * w, self.features))
    return ModReLU()(out.at[:, ::2, ::2, ::2].set(y))


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


def magnitude_max_pool(x, window=(2, 2, 2)):
  """Max-pooling by modulus over non-overlapping ``window`` on ``(T, H, W)``; ``x [B, T, H, W, C]``."""
  b, t, h, w, c = x.shape
  wt, wh, ww = window
  v = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, c).transpose(0, 1, 3, 5, 7, 2, 4, 6)
  v = v.reshape(b, t // wt, h // wh, w // ww, c, wt * wh * ww)
  idx = jnp.argmax(jnp.abs(v), axis=-1)
  return jnp.take_along_axis(v, idx[..., None], axis=-1)[..., 0]
