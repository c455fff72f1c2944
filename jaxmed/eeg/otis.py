"""OTiS (Turgut et al., 2025; official code oetu/otis): one transformer over all variates and time, MAE pretraining.

Encoder (``models_vit.py`` / ``models_otis.py`` of the official code):

1. the sample is normalised over all its variates and time with outlier-robust statistics and clamped to +-3
   (:func:`jaxmed.eeg.normalise.robust_normalise`, ``mode="sample"``: ``util/preprocess.py``'s default);
2. each variate is cut into patches of ``patch`` samples; a patch is embedded linearly (the official
   ``Conv2d`` with a ``(1, patch)`` kernel), then LayerNorm and GELU (``util/patch_embed.py``);
3. two half-width position embeddings: a learned *variate* (domain-specific) embedding on the first ``D/2``
   dimensions (``pos_embed_y``, row 0 the padding row, variates indexed from 1) and a fixed sin-cos *temporal*
   embedding of the patch index on the last ``D/2`` (``pos_embed_x``, row 0 the class token's, all zeros);
4. a class token, then ``depth`` pre-norm blocks attending **jointly over all variates and patches** (the
   official attention projects with ``qkv`` and then runs ``nn.MultiheadAttention``, which projects again with
   its ``in_proj`` and ``out_proj``, before the block's ``proj``; kept here so released weights map one to one),
   MLP ratio 4 with GELU, LayerNorm eps 1e-6, and a final LayerNorm.

Pretraining (MAE): a random ``mask_ratio`` of the ``C x P`` tokens per sample is dropped before the encoder; a
lighter decoder (linear in, mask tokens, its own half/half position embeddings, pre-norm blocks) reconstructs the
normalised patches; the loss is the per-patch MSE on the masked patches (the official ``masked_patch_loss``
option; the official default averages over all patches, visible ones included).
Deviations, listed in docs/results.md: the decoder's blocks use a GELU MLP and standard attention (official:
SwiGLU and the double-projection attention); no attention padding mask (every sample here has all its variates).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.eeg.normalise import patchify, robust_normalise
from jaxmed.nn.vit import MLP, Transformer, sincos_1d


class OTiSAttention(nn.Module):
  """``qkv`` Linear, then ``nn.MultiheadAttention`` (``in_proj`` q/k/v, softmax attention, ``out_proj``), ``proj``."""
  heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, d = x.shape
    q, k, v = jnp.split(nn.Dense(3 * d, name="qkv")(x), 3, axis=-1)
    q, k, v = (nn.Dense(d, name=f"in_proj_{s}")(t).reshape(b, n, self.heads, d // self.heads)
               for s, t in zip("qkv", (q, k, v)))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // self.heads)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits.astype(jnp.float32), -1).astype(v.dtype), v)
    out = nn.Dense(d, name="out_proj")(out.reshape(b, n, d))
    return nn.Dense(d, name="proj")(out)


class OTiSBlock(nn.Module):
  """timm's ``Block`` with the OTiS attention: ``x + attn(LN(x))``, ``x + MLP(LN(x))``."""
  heads: int
  mlp_ratio: float = 4.0
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    x = x + OTiSAttention(self.heads, name="attn")(nn.LayerNorm(self.epsilon, name="norm1")(x))
    return x + MLP(int(d * self.mlp_ratio), d, name="mlp")(nn.LayerNorm(self.epsilon, name="norm2")(x))


def temporal_embedding(num_patches: int, dim: int) -> np.ndarray:
  """``[1 + P, dim // 2]``: row 0 (the class token) zeros, then MAE's 1-D sin-cos of patch indices 0..P-1."""
  return np.concatenate([np.zeros((1, dim // 2), np.float32), sincos_1d(np.arange(num_patches), dim // 2)])


class OTiSEncoder(nn.Module):
  """``x [B, C, T] -> tokens [B, C, P, D]`` (P = T // patch); ``features`` gives the class token ``[B, D]``.

  ``keep [B, K]`` (indices into the ``C * P`` tokens) runs the encoder on those tokens only and returns
  ``[B, 1 + K, D]`` with the class token first (MAE pretraining). ``variate_ids [C]`` (1-based rows of the
  variate embedding) default to ``1..C``.
  """
  patch: int = 24
  dim: int = 64
  depth: int = 3
  heads: int = 4
  num_variates: int = 32
  max_patches: int = 512
  norm_mode: str = "sample"

  @nn.compact
  def __call__(self, x: jax.Array, keep: jax.Array | None = None, variate_ids=None, features: bool = False):
    b, c, _ = x.shape
    if c > self.num_variates:
      raise ValueError(f"OTiSEncoder: {c} channels but only {self.num_variates} variate embeddings")
    patches = patchify(robust_normalise(x, mode=self.norm_mode), self.patch)           # [B, C, P, p]
    p = patches.shape[2]
    if p > self.max_patches:
      raise ValueError(f"OTiSEncoder: {p} patches per variate exceed max_patches={self.max_patches}")
    h = nn.gelu(nn.LayerNorm(1e-5, name="patch_norm")(nn.Dense(self.dim, name="patch_embed")(patches)),
                approximate=False)
    ids = jnp.arange(1, c + 1) if variate_ids is None else jnp.asarray(variate_ids)
    table = self.param("pos_embed_y", nn.initializers.truncated_normal(0.02), (self.num_variates + 1, self.dim // 2))
    table = jnp.asarray(table).at[0].set(0.0)                                           # the padding row
    pos_x = jnp.asarray(temporal_embedding(self.max_patches, self.dim))
    pos = jnp.concatenate([jnp.broadcast_to(table[ids][:, None], (c, p, self.dim // 2)),
                           jnp.broadcast_to(pos_x[1:p + 1][None], (c, p, self.dim // 2))], -1)
    h = (h + pos[None]).reshape(b, c * p, self.dim)
    if keep is not None:
      h = jnp.take_along_axis(h, keep[..., None], axis=1)
    cls = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, self.dim))
    h = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.dim)), h], 1)
    for i in range(self.depth):
      h = OTiSBlock(self.heads, name=f"blocks_{i}")(h)
    h = nn.LayerNorm(1e-6, name="norm")(h)
    if features:
      return h[:, 0]
    return h if keep is not None else h[:, 1:].reshape(b, c, p, self.dim)


class OTiSPretrainer(nn.Module):
  """MAE: ``(x [B, C, T], mask [B, C, P])`` -> ``(pred [B, C, P, p], target [B, C, P, p])``.

  ``mask`` must come from :func:`random_patch_mask` with the same ``mask_ratio`` (a static count of masked tokens
  per sample); masked tokens never reach the encoder.
  """
  encoder: OTiSEncoder
  mask_ratio: float = 0.4
  decoder_dim: int = 32
  decoder_depth: int = 1
  decoder_heads: int = 2

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array):
    enc = self.encoder
    b, c, p = mask.shape
    flat = mask.reshape(b, c * p)
    keep = jnp.argsort(flat, axis=1, stable=True)[:, :c * p - masked_count(c * p, self.mask_ratio)]
    h = enc(x, keep=keep)                                                               # [B, 1 + K, D]
    h = nn.Dense(self.decoder_dim, name="decoder_embed")(h)
    token = self.param("mask_token", nn.initializers.normal(0.02), (self.decoder_dim,))
    full = jnp.broadcast_to(token, (b, c * p, self.decoder_dim))
    full = full.at[jnp.arange(b)[:, None], keep].set(h[:, 1:])
    table = self.param("decoder_pos_embed_y", nn.initializers.truncated_normal(0.02),
                       (enc.num_variates + 1, self.decoder_dim // 2))
    pos_x = jnp.asarray(temporal_embedding(p, self.decoder_dim))[1:]
    pos = jnp.concatenate([jnp.broadcast_to(table[1:c + 1][:, None], (c, p, self.decoder_dim // 2)),
                           jnp.broadcast_to(pos_x[None], (c, p, self.decoder_dim // 2))], -1)
    full = jnp.concatenate([h[:, :1], full + pos.reshape(1, c * p, -1)], 1)
    full = Transformer(self.decoder_depth, self.decoder_heads, name="decoder")(full)
    pred = nn.Dense(enc.patch, name="decoder_pred")(full[:, 1:]).reshape(b, c, p, enc.patch)
    return pred, patchify(robust_normalise(x, mode=enc.norm_mode), enc.patch)


def masked_count(tokens: int, ratio: float) -> int:
  """Masked tokens per sample: ``round(ratio * tokens)``, at least one, at most ``tokens - 1``."""
  return min(max(1, int(round(ratio * tokens))), tokens - 1)


def random_patch_mask(rng: jax.Array, shape: tuple[int, int, int], ratio: float) -> jax.Array:
  """``[B, C, P]`` bools with exactly :func:`masked_count` masked tokens per sample, drawn jointly over variates
  and patches as in the official ``random_masking``."""
  b, c, p = shape
  k = masked_count(c * p, ratio)
  order = jnp.argsort(jnp.argsort(jax.random.uniform(rng, (b, c * p)), axis=-1), axis=-1)
  return (order < k).reshape(b, c, p)


def masked_reconstruction_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean squared error over masked patches only (per-patch mean, then mean over masked patches)."""
  per_patch = ((pred - target) ** 2).mean(-1)
  m = mask.astype(jnp.float32)
  return (per_patch * m).sum() / jnp.maximum(m.sum(), 1.0)


def channel_features(tokens: jax.Array) -> jax.Array:
  """``[B, C, P, D] -> [B, C * D]``: mean over patches per channel, channels concatenated."""
  return tokens.mean(2).reshape(tokens.shape[0], -1)
