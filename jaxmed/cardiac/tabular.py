"""ViTa's tabular encoder: one token per feature, a CLS token and a small transformer.

Numerical feature ``i`` becomes ``x_i W_i + b_i`` (a ``Linear(1, d)`` per
feature) after z-scoring with the training set's mean and standard
deviation; binary and categorical features index an embedding table
(binary: 2 rows, categorical: one row per category). Every token adds a
learned column embedding. A missing value (NaN, or -1 for a category) is
not imputed: its token is replaced by a learned per-column mask token, so
the model sees that it is missing.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn.vit import Transformer


def standardise(numerical: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None):
  """``(z, mean, std)``: z-scores of ``numerical [N, F]`` (NaN kept); statistics from the non-missing rows."""
  x = np.asarray(numerical, np.float64)
  mean = np.nanmean(x, 0) if mean is None else mean
  std = np.nanstd(x, 0) + 1e-8 if std is None else std
  return ((x - mean) / std).astype(np.float32), mean, std


class TabularEncoder(nn.Module):
  """``(numerical [B, Fn], binary [B, Fb], categorical [B, Fc]) -> (cls [B, D], tokens [B, 1 + F, D])``.

  ``cardinalities``: categories per categorical column. NaN (numerical,
  binary) and -1 (categorical) are missing.
  """
  num_numerical: int
  num_binary: int
  cardinalities: Sequence[int]
  dim: int = 64
  depth: int = 2
  heads: int = 4

  @nn.compact
  def __call__(self, numerical: jax.Array, binary: jax.Array, categorical: jax.Array):
    b = numerical.shape[0]
    w = self.param("numerical_w", nn.initializers.normal(0.02), (self.num_numerical, self.dim))
    bias = self.param("numerical_b", nn.initializers.zeros, (self.num_numerical, self.dim))
    num_missing = jnp.isnan(numerical)
    tok_num = jnp.where(num_missing, 0.0, numerical)[..., None] * w + bias
    bin_missing = jnp.isnan(binary)
    bin_idx = jnp.where(bin_missing, 0, binary).astype(jnp.int32) + 2 * jnp.arange(self.num_binary)
    tok_bin = nn.Embed(2 * max(self.num_binary, 1), self.dim, name="binary_embed")(bin_idx)
    offsets = np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]]).astype(np.int32)
    cat_missing = categorical < 0
    cat_idx = jnp.where(cat_missing, 0, categorical) + offsets
    tok_cat = nn.Embed(int(max(sum(self.cardinalities), 1)), self.dim, name="categorical_embed")(cat_idx)
    tokens = jnp.concatenate([tok_num, tok_bin, tok_cat], axis=1)
    missing = jnp.concatenate([num_missing, bin_missing, cat_missing], axis=1)
    f = tokens.shape[1]
    mask_token = self.param("mask_token", nn.initializers.normal(0.02), (f, self.dim))
    tokens = jnp.where(missing[..., None], mask_token[None], tokens)
    tokens = tokens + self.param("column_embed", nn.initializers.normal(0.02), (f, self.dim))[None]
    cls = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, self.dim))
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.dim)), tokens], axis=1)
    x = Transformer(self.depth, self.heads, name="blocks")(x)
    return x[:, 0], x
