"""Qwen2-VL hyper-parameters: the vision tower's, the language model's and the image token ids.

Read from and written to ``transformers.Qwen2VLConfig`` (transformers 5 nests
them as ``vision_config`` and ``text_config``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxmed.llm.config import LMConfig

ACTIVATIONS = ("quick_gelu", "gelu", "silu")


@dataclasses.dataclass(frozen=True)
class VisionConfig:
  """The vision tower: ``depth`` ViT blocks of width ``embed_dim`` over ``patch_size`` x ``patch_size`` x
  ``temporal_patch_size`` patches, then a merger of ``spatial_merge_size`` x ``spatial_merge_size`` patches
  into one ``out_dim``-wide token (the language model's width; HF calls it ``hidden_size``)."""
  depth: int
  embed_dim: int
  out_dim: int
  num_heads: int
  mlp_ratio: int = 4
  in_channels: int = 3
  patch_size: int = 14
  temporal_patch_size: int = 2
  spatial_merge_size: int = 2
  hidden_act: str = "quick_gelu"
  rope_theta: float = 10000.0
  dtype: str = "float32"
  remat: bool = False   # recompute each block in the backward pass, keeping its input only (jaxmed.llm.remat)

  def __post_init__(self):
    if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
      raise ValueError(f"VisionConfig: embed_dim={self.embed_dim} / num_heads={self.num_heads} must be a multiple of 4 "
                       "(the 2D rotary embedding splits each head in height and width halves)")
    if self.hidden_act not in ACTIVATIONS:
      raise ValueError(f"VisionConfig.hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")

  @property
  def head_dim(self) -> int:
    return self.embed_dim // self.num_heads

  @property
  def patch_dim(self) -> int:
    """Length of one flattened patch in ``pixel_values``: ``C * T * P * P``."""
    return self.in_channels * self.temporal_patch_size * self.patch_size ** 2


@dataclasses.dataclass(frozen=True)
class VLMConfig:
  text: LMConfig
  vision: VisionConfig
  image_token_id: int
  video_token_id: int
  vision_start_token_id: int
  vision_end_token_id: int

  def __post_init__(self):
    if self.text.mrope_section is None:
      raise ValueError("VLMConfig: the text model needs rope_parameters.mrope_section (M-RoPE)")
    if self.vision.out_dim != self.text.hidden_size:
      raise ValueError(f"VLMConfig: vision_config.hidden_size={self.vision.out_dim} must equal the text model's "
                       f"hidden_size={self.text.hidden_size}")

  @classmethod
  def from_hf(cls, hf: Any, *, dtype: str = "float32") -> "VLMConfig":
    """From a ``transformers.Qwen2VLConfig``."""
    if getattr(hf, "model_type", None) != "qwen2_vl":
      raise ValueError(f"config.json: model_type must be 'qwen2_vl', got {getattr(hf, 'model_type', None)!r}")
    t, v = hf.text_config, hf.vision_config
    rope = dict(getattr(t, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
      raise ValueError(f"config.json: text_config.rope_parameters.rope_type {rope.get('rope_type')!r} is not "
                       "supported (supported: 'default' with mrope_section)")
    if "mrope_section" not in rope:
      raise ValueError("config.json: text_config.rope_parameters.mrope_section is missing")
    heads = t.num_attention_heads
    eos = t.eos_token_id
    text = LMConfig(family="qwen2", vocab_size=t.vocab_size, hidden_size=t.hidden_size,
                    intermediate_size=t.intermediate_size, num_layers=t.num_hidden_layers, num_heads=heads,
                    num_kv_heads=t.num_key_value_heads or heads, head_dim=t.hidden_size // heads,
                    rms_norm_eps=t.rms_norm_eps, rope_theta=float(rope.get("rope_theta", 1e6)), qkv_bias=True,
                    tie_embeddings=bool(hf.tie_word_embeddings), max_position_embeddings=t.max_position_embeddings,
                    bos_token_id=t.bos_token_id, eos_token_id=tuple(eos) if isinstance(eos, (list, tuple)) else eos,
                    mrope_section=tuple(int(s) for s in rope["mrope_section"]), dtype=dtype)
    vrope = dict(getattr(v, "rope_parameters", None) or {})
    vision = VisionConfig(depth=v.depth, embed_dim=v.embed_dim, out_dim=v.hidden_size, num_heads=v.num_heads,
                          mlp_ratio=int(v.mlp_ratio), in_channels=v.in_channels, patch_size=_int(v.patch_size),
                          temporal_patch_size=_int(v.temporal_patch_size), spatial_merge_size=v.spatial_merge_size,
                          hidden_act=v.hidden_act, rope_theta=float(vrope.get("rope_theta", 10000.0)), dtype=dtype)
    return cls(text, vision, image_token_id=hf.image_token_id, video_token_id=hf.video_token_id,
               vision_start_token_id=hf.vision_start_token_id, vision_end_token_id=hf.vision_end_token_id)

  def to_hf(self) -> Any:
    """The matching ``transformers.Qwen2VLConfig`` (for ``save_pretrained``)."""
    import transformers

    t, v = self.text, self.vision
    text = dict(vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads, num_key_value_heads=t.num_kv_heads,
                rms_norm_eps=t.rms_norm_eps, max_position_embeddings=t.max_position_embeddings,
                rope_parameters={"rope_type": "default", "rope_theta": t.rope_theta,
                                 "mrope_section": list(t.mrope_section)},
                bos_token_id=t.bos_token_id,
                eos_token_id=list(t.eos_token_id) if isinstance(t.eos_token_id, tuple) else t.eos_token_id)
    vision = dict(depth=v.depth, embed_dim=v.embed_dim, hidden_size=v.out_dim, num_heads=v.num_heads,
                  mlp_ratio=v.mlp_ratio, in_channels=v.in_channels, patch_size=v.patch_size,
                  temporal_patch_size=v.temporal_patch_size, spatial_merge_size=v.spatial_merge_size,
                  hidden_act=v.hidden_act, rope_parameters={"rope_type": "axial", "rope_theta": v.rope_theta})
    return transformers.Qwen2VLConfig(architectures=["Qwen2VLForConditionalGeneration"], text_config=text,
                                      vision_config=vision, image_token_id=self.image_token_id,
                                      video_token_id=self.video_token_id,
                                      vision_start_token_id=self.vision_start_token_id,
                                      vision_end_token_id=self.vision_end_token_id,
                                      tie_word_embeddings=t.tie_embeddings)


def _int(x) -> int:
  """HF allows ``patch_size`` as an int or a (square) pair."""
  if isinstance(x, (list, tuple)):
    if len(set(x)) != 1:
      raise ValueError(f"config.json: non-square patch sizes {list(x)} are not supported")
    return int(x[0])
  return int(x)
