"""OTiS/MOMENT-style general time-series encoder with masked-patch reconstruction pretraining.

Each variate (channel) is robustly normalised, cut into patches of 24
samples and embedded linearly; the token gets a temporal sin-cos position
(patch index) plus a learned variate embedding, and each channel's token
sequence runs through a pre-norm transformer on its own (channel
independent: the cost grows linearly with channels). Pretraining (MOMENT's
recipe; OTiS masks the same way but drops tokens as an MAE): a random
``mask_ratio`` of patches is replaced by a learned mask token and a linear
head reconstructs the normalised patch; the loss is the MSE on masked
patches only.

The variate embedding table has ``num_variates`` rows. In pretraining on
generic series the rows are indexed by the series' position; on EEG, row
``c`` tags channel ``c`` (frozen protocols keep the pretrained rows, full
fine-tuning adapts them), which is OTiS's domain-specific variate embedding
in its simplest form.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.eeg.normalise import patchify, robust_normalise
from jaxmed.nn.vit import Transformer, sincos_1d


class OTiSEncoder(nn.Module):
  """``x [B, C, T] -> tokens [B, C, P, D]`` (P = T // patch); ``mask [B, C, P]`` bools replace tokens."""
  patch: int = 24
  dim: int = 64
  depth: int = 3
  heads: int = 4
  num_variates: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    b, c, _ = x.shape
    if c > self.num_variates:
      raise ValueError(f"OTiSEncoder: {c} channels but only {self.num_variates} variate embeddings")
    patches = patchify(robust_normalise(x), self.patch)                      # [B, C, P, p]
    p = patches.shape[2]
    h = nn.Dense(self.dim, name="patch_embed")(patches)
    if mask is not None:
      token = self.param("mask_token", nn.initializers.normal(0.02), (self.dim,))
      h = jnp.where(mask[..., None], token, h)
    h = h + jnp.asarray(sincos_1d(np.arange(p), self.dim))[None, None]
    h = h + nn.Embed(self.num_variates, self.dim, name="variate_embed")(jnp.arange(c))[None, :, None]
    h = Transformer(self.depth, self.heads, name="transformer")(h.reshape(b * c, p, self.dim))   # ends in LN
    return h.reshape(b, c, p, self.dim)


class OTiSPretrainer(nn.Module):
  """Masked-patch reconstruction: ``x [B, C, T]`` -> ``(pred [B, C, P, p], target [B, C, P, p])``."""
  encoder: OTiSEncoder

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array):
    tokens = self.encoder(x, mask)
    return nn.Dense(self.encoder.patch, name="recon_head")(tokens), patchify(robust_normalise(x), self.encoder.patch)


def random_patch_mask(rng: jax.Array, shape: tuple[int, int, int], ratio: float) -> jax.Array:
  """``[B, C, P]`` bools with exactly ``round(ratio P)`` masked patches per series (at least one)."""
  k = max(1, int(round(ratio * shape[-1])))
  order = jnp.argsort(jax.random.uniform(rng, shape), axis=-1)
  return order < k


def masked_reconstruction_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean squared error over masked patches only (per-patch mean, then mean over masked patches)."""
  per_patch = ((pred - target) ** 2).mean(-1)
  m = mask.astype(jnp.float32)
  return (per_patch * m).sum() / jnp.maximum(m.sum(), 1.0)


def channel_features(tokens: jax.Array) -> jax.Array:
  """``[B, C, P, D] -> [B, C * D]``: mean over patches per channel, channels concatenated."""
  return tokens.mean(2).reshape(tokens.shape[0], -1)
