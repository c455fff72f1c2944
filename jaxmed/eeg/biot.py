"""BIOT-like EEG transformer (Yang et al., 2023): per-channel STFT tokens, channel and time embeddings.

Each channel's signal is cut into frames of ``n_fft`` samples (1 s; BIOT
uses 200 at 200 Hz) with hop ``n_fft / 2`` and a rectangular window; the
magnitude spectrum of each frame (``n_fft / 2 + 1`` bins) is one token,
embedded linearly. A learned channel embedding and a sinusoidal position
over frames are added, the tokens of all channels are concatenated into one
sequence ``[B, C * S, D]`` and run through a transformer; the mean token
goes through ELU and a linear head. As in BIOT's preprocessing, each channel
is first divided by the 95th percentile of its absolute amplitude. BIOT's official model uses a linear
attention transformer for long sequences; at these lengths (<= 16 * 39
tokens) exact softmax attention is used instead.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.nn.vit import Transformer, sincos_1d


def stft_magnitude(x: jax.Array, n_fft: int, hop: int) -> jax.Array:
  """``[..., T] -> [..., S, n_fft // 2 + 1]`` magnitudes, ``S = 1 + (T - n_fft) // hop`` frames (no padding)."""
  s = 1 + (x.shape[-1] - n_fft) // hop
  if s < 1:
    raise ValueError(f"stft_magnitude: {x.shape[-1]} samples are fewer than one {n_fft}-sample frame")
  idx = jnp.arange(s)[:, None] * hop + jnp.arange(n_fft)[None]
  return jnp.abs(jnp.fft.rfft(x[..., idx].astype(jnp.float32), axis=-1))


class BIOT(nn.Module):
  """``x [B, C, T] -> logits [B, num_outputs]``; ``features`` returns the mean token ``[B, D]`` instead."""
  num_outputs: int
  n_fft: int = 100
  hop: int = 50
  dim: int = 64
  depth: int = 2
  heads: int = 4
  num_channels: int = 19

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, features: bool = False) -> jax.Array:
    b, c, _ = x.shape
    x = x / (jnp.quantile(jnp.abs(x), 0.95, axis=-1, keepdims=True) + 1e-8)  # BIOT's per-channel amplitude scaling
    spec = stft_magnitude(x, self.n_fft, self.hop)                              # [B, C, S, F]
    h = nn.Dense(self.dim, name="patch_frequency_embedding")(spec)
    h = h + nn.Embed(self.num_channels, self.dim, name="channel_tokens")(jnp.arange(c))[None, :, None]
    h = h + jnp.asarray(sincos_1d(np.arange(spec.shape[2]), self.dim))[None, None]
    h = Transformer(self.depth, self.heads, name="transformer")(h.reshape(b, -1, self.dim)).mean(1)
    if features:
      return h
    return nn.Dense(self.num_outputs, name="head")(nn.elu(h))
