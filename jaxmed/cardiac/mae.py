"""ViTa stage 1: a masked autoencoder over spatio-temporal cine patches (He et al. 2022, as ViTa uses it).

Encoder: linear patch embedding, the fixed 5-D position embedding, random
masking (ratio 0.7), a CLS token, transformer blocks. Decoder: a linear map
to the decoder width, mask tokens put back with ``ids_restore``, the
decoder's own position embedding, blocks, and a linear map to patch pixels.
The loss is the mean squared error on the masked patches only (He et al.),
or on every patch as the official ViTa code does (``mask_loss=False`` in
``configs/imaging_model/pretraining_reconstruction_mae.yaml``, read by
``utils/losses.py`` ``ReconstructionCriterion``), optionally against
per-patch normalised targets (``norm_pix``). The official decoder ends in a
sigmoid (``networks/imaging_decoders.py``, "scale x to [0, 1]"), which
``CineDecoder.sigmoid`` turns on; it suits cine scaled to [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmed.cardiac.tokens import grid_shape, patchify, position_embedding_5d, random_masking
from jaxmed.nn.vit import Transformer


class CineEncoder(nn.Module):
  """``cine [B, S, T, H, W] -> tokens [B, 1 + K, D]`` (CLS first); with ``mask_ratio = 0`` all tokens are kept.

  ``shape = (S, T, H, W)``, ``num_lax`` of the S slices are long-axis views.
  Returns ``(tokens, mask, ids_restore, hidden)``; ``hidden`` holds each
  block's input patch tokens (for the UNETR decoder) when unmasked.
  """
  shape: Sequence[int]
  num_lax: int = 3
  patch: Sequence[int] = (5, 8, 8)
  dim: int = 64
  depth: int = 4
  heads: int = 4
  ln_epsilon: float = 1e-6    # the official timm blocks use torch's 1e-5

  @nn.compact
  def __call__(self, cine: jax.Array, key: jax.Array | None = None, mask_ratio: float = 0.0):
    s, gt, gh, gw = grid_shape(tuple(self.shape), tuple(self.patch))
    x = nn.Dense(self.dim, name="patch_embed")(patchify(cine, tuple(self.patch)))
    pos = position_embedding_5d(self.num_lax, s - self.num_lax, (gt, gh, gw), self.dim)
    x = x + jnp.asarray(pos)[None]
    mask = ids_restore = None
    if mask_ratio > 0:
      x, mask, ids_restore = random_masking(key, x, mask_ratio)
    cls = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, self.dim))
    x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.dim)), x], axis=1)
    x, hidden = Transformer(self.depth, self.heads, epsilon=self.ln_epsilon, name="blocks")(x, return_hidden=True)
    return x, mask, ids_restore, [h[:, 1:] for h in hidden]


class CineDecoder(nn.Module):
  """``(tokens [B, 1 + K, D], ids_restore [B, L]) -> patch pixels [B, L, t*h*w]`` (in (0, 1) with ``sigmoid``)."""
  shape: Sequence[int]
  num_lax: int = 3
  patch: Sequence[int] = (5, 8, 8)
  dim: int = 32
  depth: int = 2
  heads: int = 4
  sigmoid: bool = False

  @nn.compact
  def __call__(self, tokens: jax.Array, ids_restore: jax.Array) -> jax.Array:
    s, gt, gh, gw = grid_shape(tuple(self.shape), tuple(self.patch))
    x = nn.Dense(self.dim, name="embed")(tokens)
    b, length = ids_restore.shape
    mask_token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, self.dim))
    patches = jnp.concatenate([x[:, 1:], jnp.broadcast_to(mask_token, (b, length - x.shape[1] + 1, self.dim))], 1)
    patches = jnp.take_along_axis(patches, ids_restore[:, :, None], axis=1)
    pos = position_embedding_5d(self.num_lax, s - self.num_lax, (gt, gh, gw), self.dim)
    x = jnp.concatenate([x[:, :1], patches + jnp.asarray(pos)[None]], axis=1)
    x = Transformer(self.depth, self.heads, name="blocks")(x)
    out = nn.Dense(int(self.patch[0] * self.patch[1] * self.patch[2]), name="pred")(x[:, 1:])
    return jax.nn.sigmoid(out) if self.sigmoid else out


class CineMAE(nn.Module):
  """Encoder + decoder; ``__call__`` returns ``(pred [B, L, P], mask [B, L])``."""
  shape: Sequence[int]
  num_lax: int = 3
  patch: Sequence[int] = (5, 8, 8)
  dim: int = 64
  depth: int = 4
  heads: int = 4
  decoder_dim: int = 32
  decoder_depth: int = 2
  sigmoid: bool = False
  ln_epsilon: float = 1e-6

  def setup(self):
    self.encoder = CineEncoder(self.shape, self.num_lax, self.patch, self.dim, self.depth, self.heads,
                               self.ln_epsilon)
    self.decoder = CineDecoder(self.shape, self.num_lax, self.patch, self.decoder_dim, self.decoder_depth,
                               self.heads, self.sigmoid)

  def __call__(self, cine: jax.Array, key: jax.Array, mask_ratio: float = 0.7):
    tokens, mask, ids_restore, _ = self.encoder(cine, key, mask_ratio)
    if ids_restore is None:   # no masking: every token visible, in order
      length = tokens.shape[1] - 1
      ids_restore = jnp.broadcast_to(jnp.arange(length), (tokens.shape[0], length))
      mask = jnp.zeros((tokens.shape[0], length), tokens.dtype)
    return self.decoder(tokens, ids_restore), mask


def mae_loss(pred: jax.Array, cine: jax.Array, mask: jax.Array, patch, norm_pix: bool = False,
             mask_loss: bool = True) -> jax.Array:
  """MSE of ``pred [B, L, P]`` against ``cine``'s patches: over the masked patches (``mask [B, L]``, 1 = masked)
  with ``mask_loss``, else over every patch (the official ViTa setting); targets normalised per patch with
  ``norm_pix``."""
  target = patchify(cine, tuple(patch)).astype(jnp.float32)
  if norm_pix:
    mean = target.mean(-1, keepdims=True)
    var = target.var(-1, keepdims=True)
    target = (target - mean) / jnp.sqrt(var + 1e-6)
  per_patch = jnp.mean((pred.astype(jnp.float32) - target) ** 2, axis=-1)
  if not mask_loss:
    return jnp.mean(per_patch)
  return jnp.sum(per_patch * mask) / jnp.maximum(jnp.sum(mask), 1.0)
