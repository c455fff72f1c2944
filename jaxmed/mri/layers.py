"""Complex-valued layers for 2D+t data ``[B, T, H, W, C]`` (complex64), as in SSFL-Recon's complex UNet.

* :class:`ComplexConv`: ``(Wr + i Wi)(xr + i xi)`` with two real convolutions;
* :class:`ComplexConv2Dt`: factorised 2D+t, a ``(1, k, k)`` spatial then a
  ``(3, 1, 1)`` temporal complex convolution;
* :class:`ComplexConvTranspose`: the same for transposed convolution (upsampling);
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
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | None = None
  transpose: bool = False

  @nn.compact
  def __call__(self, x):
    if self.transpose:
      make = lambda name: nn.ConvTranspose(self.features, tuple(self.kernel_size), self.strides, padding="SAME",  # noqa: E731
                                           use_bias=False, name=name)
    else:
      make = lambda name: nn.Conv(self.features, tuple(self.kernel_size), self.strides, padding="SAME",  # noqa: E731
                                  use_bias=False, name=name)
    re, im = make("re"), make("im")
    xr, xi = jnp.real(x), jnp.imag(x)
    bias = self.param("bias", nn.initializers.zeros, (2, self.features))
    return (re(xr) - im(xi) + bias[0]) + 1j * (re(xi) + im(xr) + bias[1])


class ComplexConv2Dt(nn.Module):
  """Spatial ``(1, k, k)`` then temporal ``(kt, 1, 1)`` complex convolution."""

  features: int
  kernel: int = 5
  kernel_t: int = 3

  @nn.compact
  def __call__(self, x):
    x = ComplexConv(self.features, (1, self.kernel, self.kernel))(x)
    return ComplexConv(self.features, (self.kernel_t, 1, 1))(x)


def ComplexConvTranspose(features: int, strides=(1, 2, 2)) -> ComplexConv:  # noqa: N802
  """A complex transposed convolution (``(1, 2, 2)`` kernel by default: spatial upsampling by 2)."""
  return ComplexConv(features, tuple(max(s, 1) for s in strides), strides=strides, transpose=True)


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
