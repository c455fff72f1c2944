"""The decoder's hyper-parameters, read from (and written to) Hugging Face config classes."""

from __future__ import annotations

import dataclasses
from typing import Any

FAMILIES = ("llama", "qwen2", "qwen3")
REMAT_POLICIES = ("none", "full", "dots")
ATTENTION_IMPLEMENTATIONS = ("xla", "cudnn")


@dataclasses.dataclass(frozen=True)
class LMConfig:
  """Hyper-parameters of a Llama / Qwen2 / Qwen3 decoder.

  ``rope_scaling`` is ``None`` or the Llama-3 variant's
  ``(factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)``.
  ``mrope_section`` (Qwen2-VL's text model) splits the ``head_dim / 2``
  rotary frequencies among the temporal, height and width positions.
  ``dtype`` is the compute dtype (``"float32"`` in tests, ``"bfloat16"`` on
  accelerators); norms and the attention softmax always run in float32.
  Params keep their own dtype (float32 master weights), cast at each matmul.

  Two knobs change memory and speed but never the function (neither goes to
  or comes from an HF config): ``remat`` (:data:`REMAT_POLICIES`): ``"full"``
  keeps only each decoder layer's input and recomputes the layer in the
  backward pass once its output's gradient exists (:mod:`jaxmed.llm.remat`),
  ``"dots"`` is ``jax.checkpoint`` keeping the matmul outputs without a batch
  dimension (XLA decides when to recompute); ``attention`` picks
  ``jax.nn.dot_product_attention``'s implementation, ``"xla"`` (any backend)
  or ``"cudnn"`` (NVIDIA GPUs, bf16/fp16: the fused flash-attention kernel).
  """
  family: str
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  rms_norm_eps: float = 1e-6
  rope_theta: float = 10000.0
  rope_scaling: tuple[float, float, float, int] | None = None
  qkv_bias: bool = False
  qk_norm: bool = False
  tie_embeddings: bool = False
  max_position_embeddings: int = 4096
  bos_token_id: int | None = None
  eos_token_id: int | tuple[int, ...] | None = None
  mrope_section: tuple[int, ...] | None = None
  dtype: str = "float32"
  remat: str = "none"
  attention: str = "xla"

  def __post_init__(self):
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f"LMConfig.remat must be one of {REMAT_POLICIES}, got {self.remat!r}")
    if self.attention not in ATTENTION_IMPLEMENTATIONS:
      raise ValueError(f"LMConfig.attention must be one of {ATTENTION_IMPLEMENTATIONS}, got {self.attention!r}")
    if self.family not in FAMILIES:
      raise ValueError(f"LMConfig.family must be one of {FAMILIES}, got {self.family!r}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"LMConfig: num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
    if self.mrope_section is not None and sum(self.mrope_section) * 2 != self.head_dim:
      raise ValueError(f"LMConfig: mrope_section {self.mrope_section} must sum to head_dim / 2 = {self.head_dim // 2}")

  @classmethod
  def from_hf(cls, hf: Any, *, dtype: str = "float32") -> "LMConfig":
    """From a transformers ``LlamaConfig`` / ``Qwen2Config`` / ``Qwen3Config``."""
    model_type = getattr(hf, "model_type", None)
    if model_type not in FAMILIES:
      raise ValueError(f"config.json: model_type must be one of {FAMILIES}, got {model_type!r}")
    rope = dict(getattr(hf, "rope_parameters", None) or {})
    theta = rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0))
    scaling = None
    rope_type = rope.get("rope_type", "default")
    if rope_type == "llama3":
      scaling = (float(rope["factor"]), float(rope["low_freq_factor"]), float(rope["high_freq_factor"]),
                 int(rope["original_max_position_embeddings"]))
    elif rope_type != "default":
      raise ValueError(f"config.json: rope_parameters.rope_type {rope_type!r} is not supported "
                       "(supported: 'default', 'llama3')")
    heads = hf.num_attention_heads
    head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // heads
    eos = hf.eos_token_id
    return cls(family=model_type, vocab_size=hf.vocab_size, hidden_size=hf.hidden_size,
               intermediate_size=hf.intermediate_size, num_layers=hf.num_hidden_layers, num_heads=heads,
               num_kv_heads=hf.num_key_value_heads or heads, head_dim=head_dim, rms_norm_eps=hf.rms_norm_eps,
               rope_theta=float(theta), rope_scaling=scaling,
               qkv_bias=model_type == "qwen2" or bool(getattr(hf, "attention_bias", False)),
               qk_norm=model_type == "qwen3", tie_embeddings=bool(hf.tie_word_embeddings),
               max_position_embeddings=hf.max_position_embeddings, bos_token_id=hf.bos_token_id,
               eos_token_id=tuple(eos) if isinstance(eos, (list, tuple)) else eos, dtype=dtype)

  def to_hf(self) -> Any:
    """The matching transformers config object (for ``save_pretrained``)."""
    import transformers

    cls, arch = {"llama": (transformers.LlamaConfig, "LlamaForCausalLM"),
                 "qwen2": (transformers.Qwen2Config, "Qwen2ForCausalLM"),
                 "qwen3": (transformers.Qwen3Config, "Qwen3ForCausalLM")}[self.family]
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": self.rope_theta}
    if self.rope_scaling is not None:
      f, lo, hi, orig = self.rope_scaling
      rope = {"rope_type": "llama3", "rope_theta": self.rope_theta, "factor": f, "low_freq_factor": lo,
              "high_freq_factor": hi, "original_max_position_embeddings": orig}
    # ``architectures`` is what AutoModelForCausalLM, TRL and vLLM dispatch on
    kw = dict(architectures=[arch], vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
              num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
              num_key_value_heads=self.num_kv_heads, rms_norm_eps=self.rms_norm_eps, rope_parameters=rope,
              tie_word_embeddings=self.tie_embeddings, max_position_embeddings=self.max_position_embeddings,
              bos_token_id=self.bos_token_id,
              eos_token_id=list(self.eos_token_id) if isinstance(self.eos_token_id, tuple) else self.eos_token_id)
    if self.family != "qwen2":
      kw["head_dim"] = self.head_dim
      kw["attention_bias"] = self.qkv_bias
    return cls(**kw)

  @property
  def eos_ids(self) -> tuple[int, ...]:
    if self.eos_token_id is None:
      return ()
    return self.eos_token_id if isinstance(self.eos_token_id, tuple) else (self.eos_token_id,)
