"""Decoder-only language models (Llama, Qwen2, Qwen3) in Flax, HF and GGUF checkpoints, tokenizers and sampling."""

from jaxmed.llm.config import FAMILIES, LMConfig
from jaxmed.llm.gguf import checkpoint_dir, convert_gguf, pretrained
from jaxmed.llm.hf import CheckpointError, hf_param_map, load_pretrained, save_pretrained
from jaxmed.llm.model import Decoder, default_positions, init_cache, segment_positions, with_options
from jaxmed.llm.pretrain import causal_lm_loss, pack_documents
from jaxmed.llm.sampler import filter_logits, generate, left_pad, token_logprobs
from jaxmed.llm.sharding import FSDP_RULES, logical_axes, param_shardings
from jaxmed.llm.tokenizer import CHATML_TEMPLATE, load_tokenizer, render_chat, train_bpe_tokenizer

__all__ = ["CHATML_TEMPLATE", "CheckpointError", "checkpoint_dir", "Decoder", "FAMILIES", "FSDP_RULES", "LMConfig", "convert_gguf", "default_positions",
           "hf_param_map", "init_cache", "load_pretrained", "load_tokenizer", "logical_axes", "param_shardings",
           "pretrained", "render_chat", "save_pretrained", "segment_positions", "train_bpe_tokenizer", "causal_lm_loss",
           "pack_documents", "filter_logits", "generate", "left_pad", "token_logprobs", "with_options"]
