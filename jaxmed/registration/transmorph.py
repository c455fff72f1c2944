"""TransMorph (Chen et al., MedIA 2022): a Swin Transformer encoder with a convolutional decoder, 2D or 3D.

Encoder: a ``p^n`` patch embedding (``p = 4``), then stages of Swin blocks
(window multi-head self-attention with a learned relative position bias,
shifted windows in every second block, pre-norm MLP with ratio 4), with a
patch merging (``2^n`` neighbours concatenated, normalised, projected to
twice the channels) between stages. Decoder: from the deepest stage, blocks
that upsample by 2, concatenate the encoder feature of that resolution and
apply two ``3^n`` conv + LeakyReLU(0.2); below the patch size the skips are
convolutions of the (average-pooled) input pair, as in TransMorph. A near-zero
``3^n`` head gives the field. Shapes: ``(moving, fixed)`` ``[B, *S, 1]`` ->
``[B, *S, n]``; every stage's feature map divisible by its window (a stage smaller than
the window attends over all of it, unshifted, as in Swin).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.registration.networks import ConvAct

PATCH = 4  # TransMorph's patch size


def window_partition(x: jax.Array, w: Sequence[int]) -> jax.Array:
  """``[B, *R, C]`` -> ``[B * prod(R / w), prod(w), C]`` (windows in C order); ``w`` has one size per axis."""
  b, *r, c = x.shape
  n = len(r)
  x = x.reshape(b, *itertools.chain.from_iterable((s // k, k) for s, k in zip(r, w)), c)
  x = x.transpose(0, *range(1, 2 * n, 2), *range(2, 2 * n + 1, 2), 2 * n + 1)
  return x.reshape(-1, math.prod(w), c)


def window_merge(windows: jax.Array, w: Sequence[int], shape: Sequence[int], batch: int) -> jax.Array:
  """Inverse of :func:`window_partition` for a ``[batch, *shape, C]`` map."""
  n = len(shape)
  x = windows.reshape(batch, *(s // k for s, k in zip(shape, w)), *w, -1)
  x = x.transpose(0, *itertools.chain.from_iterable((1 + i, 1 + n + i) for i in range(n)), 2 * n + 1)
  return x.reshape(batch, *shape, -1)


def relative_position_index(w: Sequence[int]) -> np.ndarray:
  """``[prod(w), prod(w)]`` index into a ``prod(2w - 1)`` bias table for every query/key pair of a window."""
  coords = np.stack(np.meshgrid(*[np.arange(k) for k in w], indexing="ij")).reshape(len(w), -1)
  rel = coords[:, :, None] - coords[:, None, :] + (np.asarray(w) - 1)[:, None, None]  # each in [0, 2w - 2]
  sizes = 2 * np.asarray(w) - 1
  strides = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])
  return np.tensordot(strides, rel, axes=1)


def shifted_window_mask(shape: Sequence[int], w: Sequence[int], shift: Sequence[int]) -> np.ndarray:
  """``[num_windows, prod(w), prod(w)]``: 0 for two tokens from one region before the cyclic shift, else -100."""
  region = np.zeros(shape, np.int32)
  per_axis = [(slice(0, -k), slice(-k, -t), slice(-t, None)) if t else (slice(None),) for k, t in zip(w, shift)]
  for k, sl in enumerate(itertools.product(*per_axis)):
    region[sl] = k
  windows = window_partition(region[None, ..., None], w)[..., 0]
  return np.where(windows[:, :, None] != windows[:, None, :], -100.0, 0.0).astype(np.float32)


def fit_window(feature: Sequence[int], window: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """Per axis: the window (Swin: the whole axis if it is not larger than the window) and its shift."""
  w = tuple(min(k, s) for k, s in zip(window, feature))
  for s, k in zip(feature, w):
    if s % k:
      raise ValueError(f"SwinBlock: feature map {tuple(feature)} must be divisible by the window {w}; "
                       "give one window size per axis (TransMorph's 160x192x224 preset uses (5, 6, 7))")
  return w, tuple(k // 2 if s > k else 0 for s, k in zip(feature, w))


class WindowAttention(nn.Module):
  """Multi-head self-attention inside windows, with a relative position bias: ``[N, prod(w), C]`` -> same."""
  heads: int
  window: tuple[int, ...]

  @nn.compact
  def __call__(self, x, mask=None):
    nwin, t, c = x.shape
    hd = c // self.heads
    qkv = nn.Dense(3 * c, name="qkv")(x).reshape(nwin, t, 3, self.heads, hd)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = jnp.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(hd)
    table = self.param("relative_position_bias", nn.initializers.truncated_normal(0.02),
                       (math.prod(2 * k - 1 for k in self.window), self.heads))
    bias = table[relative_position_index(self.window)]  # [t, t, heads]
    logits = logits + bias.transpose(2, 0, 1)[None].astype(logits.dtype)
    if mask is not None:
      logits = logits.reshape(-1, mask.shape[0], self.heads, t, t) + mask[None, :, None].astype(logits.dtype)
      logits = logits.reshape(nwin, self.heads, t, t)
    out = jnp.einsum("nhqk,nkhd->nqhd", jax.nn.softmax(logits, axis=-1), v).reshape(nwin, t, c)
    return nn.Dense(c, name="proj")(out)


class SwinBlock(nn.Module):
  """Pre-norm (shifted) window attention and MLP, each with a residual: ``[B, *R, C]`` -> same.

  ``window`` is one size per axis; ``shifted`` moves the windows by half a
  window (cyclically, with the attention mask of Swin) on every axis longer
  than its window.
  """
  heads: int
  window: tuple[int, ...]
  shifted: bool

  @nn.compact
  def __call__(self, x):
    b, *r, c = x.shape
    w, shift = fit_window(r, self.window)
    shift = shift if self.shifted and any(shift) else None
    axes = tuple(range(1, len(r) + 1))
    h = nn.LayerNorm(name="norm1")(x)
    if shift:
      h = jnp.roll(h, tuple(-t for t in shift), axis=axes)
    mask = jnp.asarray(shifted_window_mask(r, w, shift)) if shift else None
    h = window_merge(WindowAttention(self.heads, w)(window_partition(h, w), mask), w, r, b)
    if shift:
      h = jnp.roll(h, shift, axis=axes)
    x = x + h
    h = nn.Dense(4 * c)(nn.LayerNorm(name="norm2")(x))
    return x + nn.Dense(c)(nn.gelu(h))


class PatchMerging(nn.Module):
  """``[B, *R, C]`` -> ``[B, *R/2, 2C]``: the ``2^n`` neighbours concatenated, normalised and projected."""

  @nn.compact
  def __call__(self, x):
    n = x.ndim - 2
    parts = [x[(slice(None),) + tuple(slice(o, None, 2) for o in offs)]
             for offs in itertools.product((0, 1), repeat=n)]
    return nn.Dense(2 * x.shape[-1], use_bias=False)(nn.LayerNorm()(jnp.concatenate(parts, axis=-1)))


class TransMorph(nn.Module):
  """Attributes: ``ndim``; ``embed`` channels; ``depths`` and ``heads`` per stage; ``window`` (an int, or
  one size per axis); ``remat``.

  The patch size is TransMorph's 4, so the decoder's last two skips (half and
  full resolution) come from convolutions of the input pair.
  """
  ndim: int = 2
  embed: int = 16
  depths: Sequence[int] = (2, 2, 2)
  heads: Sequence[int] = (2, 2, 4)
  window: int | Sequence[int] = 4
  remat: bool = False

  @nn.compact
  def __call__(self, moving, fixed):
    n, p = self.ndim, PATCH
    factor = p * 2 ** (len(self.depths) - 1)
    if any(s % factor for s in moving.shape[1:-1]):
      raise ValueError(f"TransMorph: spatial shape {moving.shape[1:-1]} must be divisible by {factor}")
    window = (self.window,) * n if isinstance(self.window, int) else tuple(self.window)
    x = jnp.concatenate([moving, fixed], axis=-1)
    half = nn.avg_pool(x, (2,) * n, (2,) * n)
    full_skip = ConvAct(self.embed // 2, n)(x)  # the input's own features at full and half resolution
    half_skip = ConvAct(self.embed, n)(half)
    h = nn.Conv(self.embed, (p,) * n, strides=(p,) * n, name="patch_embed")(x)
    block = nn.remat(SwinBlock) if self.remat else SwinBlock
    feats = []
    for stage, (depth, heads) in enumerate(zip(self.depths, self.heads)):
      for i in range(depth):
        h = block(heads, window, bool(i % 2))(h)
      feats.append(nn.LayerNorm(name=f"stage{stage}_norm")(h))
      if stage < len(self.depths) - 1:
        h = PatchMerging()(h)
    h = feats.pop()
    for skip in feats[::-1] + [half_skip, full_skip]:
      h = jax.image.resize(h, (h.shape[0], *(2 * s for s in h.shape[1:-1]), h.shape[-1]), "linear")
      h = jnp.concatenate([h, skip], axis=-1)
      h = ConvAct(skip.shape[-1], n)(ConvAct(skip.shape[-1], n)(h))
    return nn.Conv(n, (3,) * n, padding="SAME", name="flow",
                   kernel_init=nn.initializers.normal(1e-5), bias_init=nn.initializers.zeros)(h)
