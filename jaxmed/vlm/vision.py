"""Qwen2-VL's vision tower in Flax Linen: patch embedding, 2D-rotary ViT blocks and the patch merger.

  feats = VisionTower(vcfg).apply({"params": p}, pixel_values, positions, segments)   # [N / m^2, out_dim]

* ``pixel_values`` ``[N, C * T * P * P]``: the image processor's flattened
  patches (each ``(C, T, P, P)`` in that order); the patch embedding is one
  bias-free linear map, which is what a stride-``P`` 3D convolution over a
  single patch computes.
* ``positions`` ``[N, 2]`` (row, column) and ``segments`` ``[N]`` (one id per
  frame) from :mod:`jaxmed.vlm.positions`: attention is bidirectional within
  a frame only. Frames of one size can come as ``[F, n, ...]`` instead, which
  attends per frame without a mask (:class:`VisionTower`).
* Blocks are pre-norm (LayerNorm, eps 1e-6): ``x + attn(norm1(x))``, then
  ``x + mlp(norm2(x))``, with a fused ``qkv`` projection (bias) and 2D
  rotary embeddings: the first half of each head's rotary frequencies turn
  with the patch row, the second half with its column (theta 10000, the
  frequencies of a ``head_dim / 2``-wide 1D rotary).
* The merger LayerNorms every patch, concatenates each run of ``m * m``
  patches (a ``m x m`` block) and maps it through ``Linear-GELU-Linear`` to
  the language model's width.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmed.llm.model import rotate
from jaxmed.llm.remat import recompute_layer
from jaxmed.vlm.config import VisionConfig


def _act(name: str):
  if name == "quick_gelu":
    return lambda x: x * jax.nn.sigmoid(1.702 * x)
  if name == "gelu":
    return lambda x: jax.nn.gelu(x, approximate=False)
  return jax.nn.silu


def patch_rope_angles(positions: jax.Array, head_dim: int, theta: float) -> jax.Array:
  """``[N, head_dim / 2]`` rotary angles: row angles then column angles, ``head_dim / 4`` frequencies each."""
  half = head_dim // 2
  inv = 1.0 / (theta ** (jnp.arange(0, half, 2, dtype=jnp.float32) / half))
  pos = positions.astype(jnp.float32)
  return jnp.concatenate([pos[:, :1] * inv, pos[:, 1:2] * inv], axis=-1)


class VisionAttention(nn.Module):
  config: VisionConfig

  @nn.compact
  def __call__(self, x, angles, same_frame=None):
    """``x`` ``[F, n, E]``, ``angles`` ``[F, n, D/2]``; ``same_frame`` ``[F, n, n]`` or None (all attend)."""
    c = self.config
    dtype = jnp.dtype(c.dtype)
    f, n, _ = x.shape
    qkv = nn.Dense(3 * c.embed_dim, dtype=dtype, name="qkv")(x).reshape(f, n, 3, c.num_heads, c.head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]              # [F, n, H, D]
    q, k = rotate(q, angles[:, :, None, :]), rotate(k, angles[:, :, None, :])
    scores = jnp.einsum("fnhd,fmhd->fhnm", q, k, preferred_element_type=jnp.float32)
    scores = scores / jnp.sqrt(jnp.float32(c.head_dim))
    if same_frame is not None:
      scores = jnp.where(same_frame[:, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
    out = jnp.einsum("fhnm,fmhd->fnhd", probs, v).reshape(f, n, c.embed_dim)
    return nn.Dense(c.embed_dim, dtype=dtype, name="proj")(out)


class VisionBlock(nn.Module):
  config: VisionConfig

  @nn.compact
  def __call__(self, x, angles, same_frame=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    norm = lambda name: nn.LayerNorm(epsilon=1e-6, dtype=dtype, name=name)  # noqa: E731
    x = x + VisionAttention(c, name="attn")(norm("norm1")(x), angles, same_frame)
    h = nn.Dense(c.embed_dim * c.mlp_ratio, dtype=dtype, name="fc1")(norm("norm2")(x))
    return x + nn.Dense(c.embed_dim, dtype=dtype, name="fc2")(_act(c.hidden_act)(h))


class PatchMerger(nn.Module):
  config: VisionConfig

  @nn.compact
  def __call__(self, x):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    width = c.embed_dim * c.spatial_merge_size ** 2
    x = nn.LayerNorm(epsilon=1e-6, dtype=dtype, name="ln_q")(x).reshape(-1, width)
    x = nn.Dense(width, dtype=dtype, name="mlp_0")(x)
    return nn.Dense(c.out_dim, dtype=dtype, name="mlp_2")(jax.nn.gelu(x, approximate=False))


class VisionTower(nn.Module):
  """``(pixel_values, positions, segments) -> [tokens, out_dim]``, in one of two layouts.

  * packed: ``pixel_values`` ``[N, C*T*P*P]``, ``positions`` ``[N, 2]``,
    ``segments`` ``[N]`` (frames of any sizes; attention is masked to each
    frame, so its cost is ``N^2``);
  * frames of one size: ``pixel_values`` ``[F, n, C*T*P*P]``, ``positions``
    ``[F, n, 2]``, ``segments`` None (attention per frame, ``F n^2``).

  Both return the merged tokens in order, ``[N / m^2, out_dim]``.
  """
  config: VisionConfig

  @nn.compact
  def __call__(self, pixel_values, positions, segments=None, *, return_hidden: bool = False) -> Any:
    c = self.config
    dtype = jnp.dtype(c.dtype)
    if pixel_values.shape[-1] != c.patch_dim or pixel_values.ndim not in (2, 3):
      raise ValueError(f"VisionTower: pixel_values must be [N, {c.patch_dim}] or [F, n, {c.patch_dim}] "
                       f"(C*T*P*P), got {pixel_values.shape}")
    m2 = c.spatial_merge_size ** 2
    if pixel_values.shape[-2] % m2:
      raise ValueError(f"VisionTower: {pixel_values.shape[-2]} patches is not a multiple of {m2} (merge blocks)")
    packed = pixel_values.ndim == 2
    if packed and segments is None:
      raise ValueError("VisionTower: packed pixel_values [N, D] need segments [N] (one id per frame)")
    if packed:
      pixel_values, positions = pixel_values[None], positions[None]
      same_frame = (segments[:, None] == segments[None, :])[None]
    else:
      same_frame = None
    x = nn.Dense(c.embed_dim, use_bias=False, dtype=dtype, name="patch_embed")(pixel_values.astype(dtype))
    angles = jax.vmap(lambda p: patch_rope_angles(p, c.head_dim, c.rope_theta))(positions)
    recompute = c.remat and not self.is_initializing()   # jaxmed.llm.remat: only each block's input is kept
    for i in range(c.depth):
      if recompute:
        x = recompute_layer(lambda p, *a: VisionBlock(c).apply({"params": p}, *a))(
            self.variables["params"][f"blocks_{i}"], x, angles, same_frame)
      else:
        x = VisionBlock(c, name=f"blocks_{i}")(x, angles, same_frame)
    x = x.reshape(-1, c.embed_dim)
    merged = PatchMerger(c, name="merger")(x)
    return (merged, x) if return_hidden else merged
