"""OTiS robust normalisation and patching.

``robust_normalise``: per sample (all variates and time; OTiS's default) or
per series, the mean and standard deviation are computed over the points
within ``k`` standard deviations of a first pass (so spikes, pops and blinks
do not set the scale), the data are z-scored with them and clamped to
``[-k, k]`` (OTiS uses k = 3).

``patchify``: ``[..., T] -> [..., T // p, p]`` (each variate cut on its own); a tail shorter than a patch
is dropped (at 100 Hz and p = 24: 2 s -> 8 patches, 5 s -> 20, 10 s -> 41,
20 s -> 83).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def robust_normalise(x: jax.Array, k: float = 3.0, eps: float = 1e-9, mode: str = "variate") -> jax.Array:
  """``x [..., T]`` (``[..., V, T]`` for ``mode="sample"``) -> same shape, z-scored with outlier-excluded
  statistics, clamped to ``[-k, k]``.

  ``mode="variate"``: statistics per series (along T); ``"sample"``: over all variates and time of a sample, the
  default of OTiS's ``util/preprocess.py`` (``--norm_mode sample``, outliers beyond 3 SD ignored, clamp +-3).
  """
  if mode not in ("variate", "sample"):
    raise ValueError(f"robust_normalise: mode must be 'variate' or 'sample'; got {mode!r}")
  axes = (-1,) if mode == "variate" else (-2, -1)
  x = x.astype(jnp.float32)
  mean, std = x.mean(axes, keepdims=True), x.std(axes, keepdims=True)
  inlier = (jnp.abs(x - mean) <= k * (std + eps)).astype(jnp.float32)
  n = inlier.sum(axes, keepdims=True) + eps
  mean = (x * inlier).sum(axes, keepdims=True) / n
  std = jnp.sqrt((((x - mean) ** 2) * inlier).sum(axes, keepdims=True) / n)
  return jnp.clip((x - mean) / (std + eps), -k, k)


def num_patches(length: int, patch: int) -> int:
  return length // patch


def patchify(x: jax.Array, patch: int) -> jax.Array:
  """``[..., T] -> [..., T // patch, patch]`` (tail dropped)."""
  p = num_patches(x.shape[-1], patch)
  if p == 0:
    raise ValueError(f"patchify: a series of {x.shape[-1]} samples is shorter than one patch of {patch}")
  return x[..., :p * patch].reshape(*x.shape[:-1], p, patch)
