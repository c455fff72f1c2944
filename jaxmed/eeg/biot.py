"""BIOT (Yang et al., 2023) as the official code and braindecode's ``BIOT`` define it, with its linear attention.

Per channel: the magnitude STFT (``n_fft`` samples, i.e. 1 s; hop ``n_fft / 2``; rectangular window, no centring,
as ``torch.stft(center=False)``) gives one token per frame (``n_fft / 2 + 1`` bins), embedded linearly
(``patch_embedding``); the channel's learned token (``channel_tokens``) and the sinusoidal position of the frame
(Vaswani's interleaved sin / cos) are added. The tokens of all channels are concatenated (channel-major,
``[B, C * S, D]``) and run through the linear-attention transformer of ``linear_attention_transformer``
(the package BIOT uses): per layer ``x + to_out(attn(LN(x)))`` and ``x + w2(GELU(w1(LN(x))))``, where the
attention is non-causal linear attention: queries softmax-normalised over their features and scaled by
``d_head^-1/2``, keys softmax-normalised over the sequence, ``out = q (k^T v)``. No final norm. The mean token
goes through ELU and a linear head.

``amplitude_quantile``: BIOT's data loaders divide each channel by the 95th percentile of its absolute amplitude;
here that is part of the module (``None`` turns it off, as braindecode's module leaves it to the data).

:func:`params_from_braindecode` maps a braindecode ``BIOT`` state dict (``encoder.patch_embedding.projection``,
``encoder.transformer.layers.layers.{i}.{0,1}...``, ``encoder.channel_tokens``, ``final_layer
.classification_head``) onto these params; :func:`load_braindecode_biot` reads it from a safetensors file.
"""

from __future__ import annotations

import math
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmed.io.torch_checkpoint import tensor_getter


def stft_magnitude(x: jax.Array, n_fft: int, hop: int) -> jax.Array:
  """``[..., T] -> [..., S, n_fft // 2 + 1]`` magnitudes, ``S = 1 + (T - n_fft) // hop`` frames (no padding)."""
  s = 1 + (x.shape[-1] - n_fft) // hop
  if s < 1:
    raise ValueError(f"stft_magnitude: {x.shape[-1]} samples are fewer than one {n_fft}-sample frame")
  idx = jnp.arange(s)[:, None] * hop + jnp.arange(n_fft)[None]
  return jnp.abs(jnp.fft.rfft(x[..., idx].astype(jnp.float32), axis=-1))


def sinusoidal_positions(n: int, dim: int) -> np.ndarray:
  """``[n, dim]``: ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(...)`` (Vaswani et al.)."""
  div = np.exp(np.arange(0, dim, 2) * (-math.log(10000.0) / dim))
  pe = np.zeros((n, dim))
  pe[:, 0::2] = np.sin(np.arange(n)[:, None] * div)
  pe[:, 1::2] = np.cos(np.arange(n)[:, None] * div)[:, :dim // 2]
  return pe.astype(np.float32)


def linear_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """``[B, H, N, d] -> [B, H, N, d]``: ``softmax_d(q) d^-1/2 (softmax_N(k)^T v)`` (non-causal, O(N d^2))."""
  q = jax.nn.softmax(q, axis=-1) * q.shape[-1] ** -0.5
  k = jax.nn.softmax(k, axis=-2)
  return jnp.einsum("bhnd,bhde->bhne", q, jnp.einsum("bhnd,bhne->bhde", k, v))


class LinearAttentionLayer(nn.Module):
  """One pre-norm layer: linear self-attention, then a GELU feed-forward (``4 D``)."""
  heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, d = x.shape
    h = nn.LayerNorm(1e-5, name="attn_norm")(x)
    split = lambda t: t.reshape(b, n, self.heads, d // self.heads).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = (split(nn.Dense(d, use_bias=False, name=f"to_{s}")(h)) for s in "qkv")
    out = linear_attention(q, k, v).transpose(0, 2, 1, 3).reshape(b, n, d)
    x = x + nn.Dense(d, name="to_out")(out)
    h = nn.LayerNorm(1e-5, name="ff_norm")(x)
    return x + nn.Dense(d, name="w2")(nn.gelu(nn.Dense(4 * d, name="w1")(h), approximate=False))


class BIOT(nn.Module):
  """``x [B, C, T] -> logits [B, num_outputs]``; ``features=True`` returns the mean token ``[B, D]``."""
  num_outputs: int
  n_fft: int = 200
  hop: int = 100
  dim: int = 256
  depth: int = 4
  heads: int = 8
  num_channels: int = 18
  amplitude_quantile: float | None = 0.95

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, features: bool = False) -> jax.Array:
    b, c, _ = x.shape
    if c > self.num_channels:
      raise ValueError(f"BIOT: {c} channels but only {self.num_channels} channel tokens")
    if self.amplitude_quantile is not None:
      x = x / (jnp.quantile(jnp.abs(x), self.amplitude_quantile, axis=-1, keepdims=True) + 1e-8)
    spec = stft_magnitude(x, self.n_fft, self.hop)                                  # [B, C, S, F]
    h = nn.Dense(self.dim, name="patch_embedding")(spec)
    h = h + nn.Embed(self.num_channels, self.dim, name="channel_tokens")(jnp.arange(c))[None, :, None]
    h = h + jnp.asarray(sinusoidal_positions(spec.shape[2], self.dim))[None, None]
    h = h.reshape(b, -1, self.dim)
    for i in range(self.depth):
      h = LinearAttentionLayer(self.heads, name=f"layers_{i}")(h)
    h = h.mean(1)
    if features:
      return h
    return nn.Dense(self.num_outputs, name="head")(nn.elu(h))


def params_from_braindecode(state: Mapping[str, np.ndarray], depth: int, path: str = "") -> dict:
  """braindecode ``BIOT`` state dict (arrays) -> :class:`BIOT` params; a missing tensor names itself and ``path``."""
  get = tensor_getter(state, path, "braindecode BIOT")

  def dense(prefix, bias=True):
    out = {"kernel": get(prefix + ".weight").T}
    if bias:
      out["bias"] = get(prefix + ".bias")
    return out

  def norm(prefix):
    return {"scale": get(prefix + ".weight"), "bias": get(prefix + ".bias")}

  params = {"patch_embedding": dense("encoder.patch_embedding.projection"),
            "channel_tokens": {"embedding": get("encoder.channel_tokens.weight")},
            "head": dense("final_layer.classification_head")}
  for i in range(depth):
    p = f"encoder.transformer.layers.layers.{i}"
    params[f"layers_{i}"] = {"attn_norm": norm(f"{p}.0.norm"), "to_q": dense(f"{p}.0.fn.to_q", False),
                             "to_k": dense(f"{p}.0.fn.to_k", False), "to_v": dense(f"{p}.0.fn.to_v", False),
                             "to_out": dense(f"{p}.0.fn.to_out"), "ff_norm": norm(f"{p}.1.norm"),
                             "w1": dense(f"{p}.1.fn.fn.w1"), "w2": dense(f"{p}.1.fn.fn.w2")}
  return {"params": params}


def load_braindecode_biot(path: str, **kwargs) -> tuple[BIOT, dict]:
  """A :class:`BIOT` and its variables from a braindecode state dict saved as safetensors (no pickle).

  Sizes come from the tensors (``dim``, ``depth``, channels, outputs, ``n_fft``); ``kwargs`` set the rest
  (``heads`` defaults to braindecode's 8, ``hop`` to ``n_fft // 2``, ``amplitude_quantile`` to None).
  """
  from safetensors.numpy import load_file
  try:
    state = load_file(path)
  except Exception as e:  # missing file, not safetensors
    raise ValueError(f"{path}: could not read a safetensors state dict ({type(e).__name__}: {e})") from e
  w = state.get("encoder.patch_embedding.projection.weight")
  if w is None:
    raise KeyError(f"{path}: no 'encoder.patch_embedding.projection.weight'; not a braindecode BIOT state dict")
  depth = len({k.split(".")[4] for k in state if k.startswith("encoder.transformer.layers.layers.")})
  n_fft = 2 * (w.shape[1] - 1)
  cfg = {"n_fft": n_fft, "hop": n_fft // 2, "heads": 8, "amplitude_quantile": None} | kwargs
  model = BIOT(num_outputs=state["final_layer.classification_head.weight"].shape[0], dim=w.shape[0], depth=depth,
               num_channels=state["encoder.channel_tokens.weight"].shape[0], **cfg)
  return model, params_from_braindecode(state, depth, path)
