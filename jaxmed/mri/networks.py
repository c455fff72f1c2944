"""SSFL-Recon's networks, as in the official code (midas-tum/SSFL-Recon): the complex 2D+t UNet, the unrolled
reconstruction with feature fusion, the feature extractor's projection heads, and the ``>= 0`` constraint.

UNet (``reconstruction/feature_assisted_unet.py``, ``feature_learning/models/base_unet.py``), ``filters = 12``,
``levels = 2``, one layer per level:

* the input is zero-padded in ``(T, H, W)`` to a multiple of ``2^levels`` and the output cropped back;
* encoder level ``l``: spatial ``(1, 5, 5)`` conv -> instance norm -> ModReLU, temporal ``(3, 1, 1)`` conv ->
  instance norm -> ModReLU (``filters 2^l`` channels; the skip), then magnitude max-pooling ``(2, 2, 2)``;
* fusion: the extractor's features are concatenated with the encoder output *before* the bottleneck;
* bottleneck (``filters 2^levels``): the same two conv blocks, then the up-sampling
  (:class:`~jaxmed.mri.layers.ComplexUpsample`, with ModReLU);
* decoder level ``l``: concatenate the skip, temporal block, spatial block, up-sampling (not on level 0);
* output: a ``1 x 1 x 1`` complex convolution to one channel, no activation.

Unrolled reconstruction (``reconstruction/recon_model.py``), ``S`` iterations with their own weights:
``x <- x - (tau_i / S) UNet_i([x, f_i])``, then the gradient-step data consistency
``x <- x - lambda_i A^H (A x - y)``; ``tau_i = 0.1`` and ``lambda_i = 1`` at initialisation. Both are kept
``>= 0`` as the official Keras ``NonNeg`` constraint does: :func:`nonneg_scalars` projects them after every
optimiser update, and the forward pass reads ``max(., 0)`` so a network trained without it still cannot flip
the sign.

Feature extractor (``feature_learning/models/VICReg_feature_model.py``): an unrolled network of the same kind
without fusion; ``f_i`` is UNet_i's encoder output (``filters 2^(levels-1)`` channels at ``1/2^levels`` of the
padded ``(T, H, W)``). :class:`ProjectionHeads` is the official MLP per iteration.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmed.mri.layers import (ComplexConv, ComplexConvFrames, ComplexConvTime, ComplexUpsample, ModReLU,
                               complex_instance_norm, magnitude_max_pool)
from jaxmed.mri.sense import data_consistency

NONNEG_PREFIXES = ("tau_", "lambda_")


def _block(conv, x):
  """Convolution -> complex instance norm -> ModReLU (the official ``conv_block``)."""
  return ModReLU()(complex_instance_norm(conv(x)))


def unet_padding(shape: Sequence[int], levels: int) -> list[tuple[int, int]]:
  """Zero padding ``[(before, after)]`` per axis of ``(T, H, W)`` to the next multiple of ``2^levels``
  (``before = total // 2``, as the official ``calculate_padding``)."""
  f = 2 ** levels
  return [((-n % f) // 2, (-n % f) - (-n % f) // 2) for n in shape]


class ComplexUNet(nn.Module):
  """``x [B, T, H, W, Cin]`` complex -> ``(out [B, T, H, W, 1], encoded [B, T', H', W', filters 2^(levels-1)])``.

  ``features`` (optional) ``[B, T', H', W', Ff]`` (the extractor's ``encoded``, same ``T', H', W'``) are
  concatenated with ``encoded`` before the bottleneck. Any ``T, H, W`` (padded internally).
  """

  filters: int = 12
  levels: int = 2
  kernel: int = 5
  kernel_t: int = 3

  @nn.compact
  def __call__(self, x, features=None):
    t, h, w = x.shape[1:4]
    pad = unet_padding((t, h, w), self.levels)
    x = jnp.pad(x, [(0, 0), *pad, (0, 0)])
    skips = []
    for level in range(self.levels):
      f = self.filters * 2 ** level
      x = _block(ComplexConvTime(f, self.kernel_t), _block(ComplexConvFrames(f, self.kernel), x))
      skips.append(x)
      x = magnitude_max_pool(x)
    encoded = x
    if features is not None:
      x = jnp.concatenate([x, features.astype(x.dtype)], axis=-1)
    f = self.filters * 2 ** self.levels
    x = _block(ComplexConvTime(f, self.kernel_t), _block(ComplexConvFrames(f, self.kernel), x))
    x = ComplexUpsample(self.filters * 2 ** (self.levels - 1))(x)
    for level in reversed(range(self.levels)):
      f = self.filters * 2 ** level
      x = jnp.concatenate([x, skips[level]], axis=-1)
      x = _block(ComplexConvFrames(f, self.kernel), _block(ComplexConvTime(f, self.kernel_t), x))
      if level > 0:
        x = ComplexUpsample(self.filters * 2 ** (level - 1))(x)
    b, tp, hp, wp, c = x.shape
    out = ComplexConv(1, (1,))(x.reshape(-1, 1, c)).reshape(b, tp, hp, wp, 1)
    (t0, _), (h0, _), (w0, _) = pad
    return out[:, t0:t0 + t, h0:h0 + h, w0:w0 + w], encoded


class UnrolledRecon(nn.Module):
  """``(x0 [B, T, H, W], y [B, T, C, H, W], maps [B, C, H, W], mask [B, T, ...], features) -> (x, encoded)``.

  ``features``: one array per iteration (or None); ``encoded``: UNet_i's encoder output per iteration.
  """

  iterations: int = 2
  filters: int = 12
  levels: int = 2

  @nn.compact
  def __call__(self, x0, y, maps, mask, features: Sequence | None = None):
    dc = jax.vmap(data_consistency, in_axes=(0, 0, 0, 0, None))
    x = x0
    encoded = []
    for i in range(self.iterations):
      tau = jax.nn.relu(self.param(f"tau_{i}", nn.initializers.constant(0.1), ()))
      lam = jax.nn.relu(self.param(f"lambda_{i}", nn.initializers.constant(1.0), ()))
      f = None if features is None else features[i]
      d, e = ComplexUNet(self.filters, self.levels, name=f"unet_{i}")(x[..., None], f)
      encoded.append(e)
      x = x - (tau / self.iterations) * d[..., 0]
      x = dc(x, y, maps, mask, lam)
    return x, encoded


def nonneg_scalars(prefixes: Sequence[str] = NONNEG_PREFIXES) -> optax.GradientTransformation:
  """Chain after the optimiser: params whose name starts with a prefix end every update at ``max(p + u, 0)``
  (Keras' ``NonNeg`` projection, which the official code puts on tau and the data-consistency weight)."""

  def hit(path) -> bool:
    return any(str(getattr(k, "key", k)).startswith(tuple(prefixes)) for k in path[-1:])

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("nonneg_scalars needs params: call tx.update(grads, state, params)")
    new = jax.tree_util.tree_map_with_path(
        lambda path, u, p: jnp.maximum(p + u, 0.0) - p if hit(path) else u, updates, params)
    return new, state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class ProjectionHead(nn.Module):
  """The official MLP on one iteration's ``encoded [B, T', h, w, F]`` complex -> ``[B T', 64]``.

  ``[Re, Im]`` (``2F`` real channels), global max over ``(h, w)`` per frame and channel (Keras
  ``GlobalMaxPool2D`` with the frames as its batch), then Dense 64 -> BatchNorm -> ReLU -> Dense 64 -> BatchNorm.
  """

  dim: int = 64

  @nn.compact
  def __call__(self, f, *, train: bool = True):
    h = jnp.concatenate([jnp.real(f), jnp.imag(f)], axis=-1)
    h = h.max(axis=(2, 3)).reshape(-1, h.shape[-1])
    h = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(self.dim)(h)))
    return nn.BatchNorm(use_running_average=not train)(nn.Dense(self.dim)(h))


class ProjectionHeads(nn.Module):
  """One :class:`ProjectionHead` per unrolled iteration: ``[encoded_i] -> [z_i [B T', 64]]``."""

  iterations: int = 2
  dim: int = 64

  @nn.compact
  def __call__(self, encoded: Sequence, *, train: bool = True):
    return [ProjectionHead(self.dim, name=f"head_{i}")(e, train=train) for i, e in enumerate(encoded)]
