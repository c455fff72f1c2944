"""Vision-transformer pieces: 1-D sin-cos embeddings and pre-norm transformer blocks (as timm's ``Block``)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def sincos_1d(positions: np.ndarray, dim: int, base: float = 10000.0) -> np.ndarray:
  """``[N, dim]`` sin-cos embedding of ``positions [N]``: ``sin(p w_i)`` then ``cos(p w_i)``, ``w_i = base^(-2i/dim)``."""
  if dim % 2:
    raise ValueError(f"sincos_1d: dim must be even, got {dim}")
  omega = 1.0 / base ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
  out = np.asarray(positions, np.float64).reshape(-1)[:, None] * omega[None]
  return np.concatenate([np.sin(out), np.cos(out)], axis=1).astype(np.float32)


class MLP(nn.Module):
  hidden: int
  out: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.out)(nn.gelu(nn.Dense(self.hidden)(x), approximate=False))


class TransformerBlock(nn.Module):
  """``x + MHSA(LN(x))``, then ``x + MLP(LN(x))``: ``[B, L, D] -> [B, L, D]`` (LN and softmax in float32)."""
  num_heads: int
  mlp_ratio: float = 4.0
  epsilon: float = 1e-6     # LayerNorm; torch.nn.LayerNorm's default (timm's Block) is 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    h = nn.LayerNorm(epsilon=self.epsilon)(x.astype(jnp.float32)).astype(x.dtype)
    x = x + nn.MultiHeadDotProductAttention(num_heads=self.num_heads, qkv_features=d, out_features=d)(h, h)
    h = nn.LayerNorm(epsilon=self.epsilon)(x.astype(jnp.float32)).astype(x.dtype)
    return x + MLP(int(d * self.mlp_ratio), d)(h)


class Transformer(nn.Module):
  """``depth`` blocks and a final LayerNorm; ``return_hidden`` also gives each block's input ``[depth, B, L, D]``."""
  depth: int
  num_heads: int
  mlp_ratio: float = 4.0
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, return_hidden: bool = False):
    hidden = []
    for _ in range(self.depth):
      hidden.append(x)
      x = TransformerBlock(self.num_heads, self.mlp_ratio, self.epsilon)(x)
    x = nn.LayerNorm(epsilon=self.epsilon)(x.astype(jnp.float32))
    return (x, hidden) if return_hidden else x
