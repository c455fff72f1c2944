"""A small convolutional image classifier whose penultimate layer serves as frozen features."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax


class SmallCNN(nn.Module):
  """``[B, H, W, C_in] -> logits [B, num_classes]`` (or features ``[B, feature_dim]``).

  ``widths`` 3x3 conv blocks (conv, ReLU, 2x2 max-pool after
  every block but the last), global average pooling, then a ``feature_dim``
  dense layer with ReLU: the features. A dense layer maps them to logits.
  Works for any image size >= ``2 ** (len(widths) - 1)``.
  """
  num_classes: int
  widths: Sequence[int] = (16, 32)
  feature_dim: int = 16

  @nn.compact
  def __call__(self, x: jax.Array, *, features_only: bool = False) -> jax.Array:
    for i, w in enumerate(self.widths):
      x = nn.relu(nn.Conv(w, (3, 3))(x))
      if i < len(self.widths) - 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    feats = nn.relu(nn.Dense(self.feature_dim)(x.mean(axis=(1, 2))))
    if features_only:
      return feats
    return nn.Dense(self.num_classes)(feats)
