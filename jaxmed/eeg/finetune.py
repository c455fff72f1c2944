"""Features of the general models on EEG windows, and the encoder + linear head used for full fine-tuning.

``foundation_features(encoder, x)`` maps ``x [B, C, T]`` (microvolts) to
``[B, C * D]``: the per-channel mean of the encoder's patch tokens (OTiS) or
of the decoder's last hidden states (TimesFM-style, each channel one series,
truncated to whole input patches), channels concatenated so a probe sees
where a pattern is.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxmed.eeg.otis import OTiSEncoder, channel_features
from jaxmed.eeg.timesfm import TimesFMDecoder


def foundation_features(encoder: nn.Module, x: jax.Array) -> jax.Array:
  """Call inside a module (or via :func:`features_fn`); ``[B, C, T] -> [B, C * D]``."""
  if isinstance(encoder, OTiSEncoder):
    return channel_features(encoder(x))
  if isinstance(encoder, TimesFMDecoder):
    b, c, t = x.shape
    n = (t // encoder.input_patch) * encoder.input_patch
    _, h = encoder(x[..., :n].reshape(b * c, n))
    return h.mean(1).reshape(b, c * h.shape[-1])
  raise TypeError(f"foundation_features: unsupported encoder {type(encoder).__name__}")


def features_fn(encoder: nn.Module):
  """``(encoder_variables, x [B, C, T]) -> [B, C * D]`` (pure; jit it)."""
  return lambda variables, x: nn.apply(lambda mdl, xx: foundation_features(mdl, xx), encoder)(variables, x)


class FoundationClassifier(nn.Module):
  """Encoder + linear head, ``[B, C, T] -> [B, K]``; params ``{"encoder": ..., "head": ...}``."""
  encoder: nn.Module
  outputs: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return nn.Dense(self.outputs, name="head")(foundation_features(self.encoder, x))
