"""OTiS robust normalisation and channel-independent patching.

``robust_normalise``: per series, the mean and standard deviation are
computed over the points within ``k`` standard deviations of a first pass
(so spikes, pops and blinks do not set the scale), the series is z-scored
with them and clamped to ``[-k, k]`` (OTiS uses k = 3).

``patchify``: ``[..., T] -> [..., T // p, p]``; a tail shorter than a patch
is dropped (at 100 Hz and p = 24: 2 s -> 8 patches, 5 s -> 20, 10 s -> 41,
20 s -> 83).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def robust_normalise(x: jax.Array, k: float = 3.0, eps: float = 1e-6) -> jax.Array:
  """``x [..., T]`` -> same shape, z-scored with outlier-excluded statistics, clamped to ``[-k, k]``."""
  x = x.astype(jnp.float32)
  mean, std = x.mean(-1, keepdims=True), x.std(-1, keepdims=True)
  inlier = (jnp.abs(x - mean) <= k * std).astype(jnp.float32)
  n = jnp.maximum(inlier.sum(-1, keepdims=True), 1.0)
  mean = (x * inlier).sum(-1, keepdims=True) / n
  std = jnp.sqrt((((x - mean) ** 2) * inlier).sum(-1, keepdims=True) / n)
  return jnp.clip((x - mean) / (std + eps), -k, k)


def num_patches(length: int, patch: int) -> int:
  return length // patch


def patchify(x: jax.Array, patch: int) -> jax.Array:
  """``[..., T] -> [..., T // patch, patch]`` (tail dropped)."""
  p = num_patches(x.shape[-1], patch)
  if p == 0:
    raise ValueError(f"patchify: a series of {x.shape[-1]} samples is shorter than one patch of {patch}")
  return x[..., :p * patch].reshape(*x.shape[:-1], p, patch)
