"""A Qwen2-VL-shaped model whose language model is a pretrained decoder (SmolVLM / LLaVA style).

No small pretrained VLM installs offline, but SmolLM2-135M-Instruct does (:func:`jaxmed.llm.pretrained`).
:func:`vlm_config_on_lm` wraps any :class:`jaxmed.llm.LMConfig` (a Llama decoder without qkv bias, a Qwen2
one with it) in a :class:`~jaxmed.vlm.VLMConfig`: a new vision tower whose merger projects to the
decoder's width, M-RoPE sections in Qwen2-VL's proportions, and four vision tokens appended to the
vocabulary. On text tokens the three M-RoPE positions are equal, so the rotation is the decoder's own 1D
RoPE and, without an image, the grafted model computes the pretrained decoder's logits exactly
(``tests/vlm/test_graft.py``).

  tok, ids = add_vision_tokens(llm.load_tokenizer(lm_dir))
  config = vlm_config_on_lm(lm_model.config, VisionConfig(...), ids)
  params = graft_language_model(Qwen2VL(config).init(...)["params"], lm_params)
  # or all of it from a checkpoint directory:
  model, params, tok, new_rows = vlm_on_pretrained(lm_dir, VisionConfig(...))

The vision tower, the merger and the new tokens' embedding rows keep their fresh initialisation; they are
what stage-0 alignment trains, with the decoder frozen (:func:`alignment_optimizer`, LLaVA's first stage).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed.llm.config import LMConfig
from jaxmed.vlm.config import VisionConfig, VLMConfig
from jaxmed.vlm.processor import VISION_TOKENS, VL_CHAT_TEMPLATE


def default_mrope_section(head_dim: int) -> tuple[int, int, int]:
  """Temporal / height / width frequency counts in Qwen2-VL's proportions (16, 24, 24 of 64 at head_dim 128)."""
  half = head_dim // 2
  t = half // 4
  h = (half - t) // 2
  return (t, h, half - t - h)


def add_vision_tokens(tokenizer) -> tuple[Any, dict[str, int]]:
  """Add Qwen2-VL's vision tokens (:data:`~jaxmed.vlm.processor.VISION_TOKENS`) to a Hugging Face tokenizer as
  special tokens; returns the tokenizer and ``{token: id}``. Tokens it already has keep their ids."""
  missing = [t for t in VISION_TOKENS if t not in tokenizer.get_vocab()]
  if missing:
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
  return tokenizer, {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}


def vlm_config_on_lm(text: LMConfig, vision: VisionConfig, token_ids: Mapping[str, int],
                     mrope_section: tuple[int, ...] | None = None) -> VLMConfig:
  """A :class:`VLMConfig` on the decoder ``text``: the vocabulary grown to hold ``token_ids`` (from
  :func:`add_vision_tokens`), M-RoPE sections (default :func:`default_mrope_section`) and the vision merger's
  output width set to the decoder's ``hidden_size``."""
  missing = [t for t in VISION_TOKENS if t not in token_ids]
  if missing:
    raise ValueError(f"vlm_config_on_lm: token_ids lacks {missing}; call add_vision_tokens(tokenizer) first")
  vocab = max(text.vocab_size, max(token_ids.values()) + 1)
  text = dataclasses.replace(text, vocab_size=vocab,
                             mrope_section=tuple(mrope_section or default_mrope_section(text.head_dim)))
  vision = dataclasses.replace(vision, out_dim=text.hidden_size)
  return VLMConfig(text, vision, image_token_id=token_ids["<|image_pad|>"],
                   video_token_id=token_ids["<|video_pad|>"],
                   vision_start_token_id=token_ids["<|vision_start|>"],
                   vision_end_token_id=token_ids["<|vision_end|>"])


def _grow_rows(pretrained: jax.Array, fresh: jax.Array, name: str) -> jax.Array:
  """``fresh`` ``[V', ...]`` with its first ``V`` rows replaced by ``pretrained`` ``[V, ...]`` (``V <= V'``)."""
  if pretrained.shape[1:] != fresh.shape[1:] or pretrained.shape[0] > fresh.shape[0]:
    raise ValueError(f"graft_language_model: {name} of shape {tuple(pretrained.shape)} does not fit the VLM's "
                     f"{tuple(fresh.shape)} (same width, at most as many rows)")
  return fresh.at[:pretrained.shape[0]].set(pretrained.astype(fresh.dtype))


def graft_language_model(vlm_params: Mapping[str, Any], lm_params: Mapping[str, Any]) -> dict[str, Any]:
  """``vlm_params`` (a fresh :class:`~jaxmed.vlm.Qwen2VL` init) with its ``language_model`` replaced by the
  pretrained decoder's ``lm_params``. The embedding (and an untied ``lm_head``) keep the new vision tokens'
  fresh rows; every other leaf must match in shape."""
  fresh = vlm_params["language_model"]
  missing = set(fresh) ^ set(lm_params)
  if missing:
    raise ValueError(f"graft_language_model: the decoders differ in modules {sorted(missing)} "
                     "(is the VLM's text config the LM's own?)")
  grafted = {}
  for name, sub in fresh.items():
    if name == "embed_tokens":
      grafted[name] = {"embedding": _grow_rows(lm_params[name]["embedding"], sub["embedding"], "embed_tokens")}
    elif name == "lm_head":   # Dense kernel [H, V]: grow the vocabulary axis
      grafted[name] = {"kernel": _grow_rows(lm_params[name]["kernel"].T, sub["kernel"].T, "lm_head").T}
    else:
      def check(a, b, path=name):
        if a.shape != b.shape:
          raise ValueError(f"graft_language_model: {path} has shape {tuple(a.shape)} in the LM and "
                           f"{tuple(b.shape)} in the VLM")
        return jnp.asarray(a, b.dtype)
      grafted[name] = jax.tree.map(check, lm_params[name], sub)
  return {**vlm_params, "language_model": grafted}


def alignment_optimizer(tx: optax.GradientTransformation, params: Mapping[str, Any],
                        new_rows: tuple[int, int]) -> optax.GradientTransformation:
  """``tx`` on the vision tower (patch embedding, blocks, merger) and on the embedding rows
  ``new_rows = (start, stop)`` of the grafted vision tokens (and those rows of an untied ``lm_head``); every
  other decoder parameter gets a zero update, so the pretrained language model stays bit-identical.

  The row mask is applied after ``tx``, so weight decay does not touch the frozen rows either.
  """
  start, stop = new_rows

  def label(path, _):
    top = path[0].key
    if top == "visual":
      return "train"
    return "rows" if path[1].key in ("embed_tokens", "lm_head") else "freeze"

  labels = jax.tree_util.tree_map_with_path(label, dict(params))

  def keep_rows(updates, state, params=None):
    del params

    def mask(path, u):
      axis = 1 if path[-1].key == "kernel" else 0   # lm_head kernel [H, V]; embedding [V, H]
      ids = jnp.arange(u.shape[axis])
      keep = ((ids >= start) & (ids < stop)).astype(u.dtype)
      return u * (keep[None, :] if axis == 1 else keep[:, None])

    return jax.tree_util.tree_map_with_path(mask, updates), state

  rows = optax.chain(tx, optax.GradientTransformation(lambda p: optax.EmptyState(), keep_rows))
  return optax.multi_transform({"train": tx, "rows": rows, "freeze": optax.set_to_zero()}, labels)


def vlm_on_pretrained(lm_dir: str, vision: VisionConfig, *, image_size: int = 56, seed: int = 0):
  """``(model, params, tokenizer, new_rows)``: the decoder saved in the local checkpoint ``lm_dir`` under a fresh
  vision tower (:func:`vlm_config_on_lm`, :func:`graft_language_model`), its tokenizer with the vision tokens
  and a ChatML template that renders image parts (:data:`~jaxmed.vlm.processor.VL_CHAT_TEMPLATE`; the pad
  token falls back to EOS), and ``new_rows = (start, stop)``, the vision tokens' vocabulary rows (for
  :func:`alignment_optimizer`). ``image_size`` only sizes the initialising call."""
  from jaxmed.llm.hf import load_pretrained
  from jaxmed.llm.tokenizer import load_tokenizer
  from jaxmed.vlm.model import Qwen2VL, prepare_inputs

  lm, lm_params = load_pretrained(lm_dir)
  tok, ids = add_vision_tokens(load_tokenizer(lm_dir))
  tok.chat_template = VL_CHAT_TEMPLATE
  if tok.pad_token_id is None:
    tok.pad_token = tok.eos_token
  rows = sorted(ids.values())
  if rows != list(range(rows[0], rows[0] + len(rows))):
    raise ValueError(f"{lm_dir}: the tokenizer already holds some of {VISION_TOKENS} at ids {ids}, not one "
                     "contiguous block of new rows")
  config = vlm_config_on_lm(lm.config, vision, ids)
  model = Qwen2VL(config)
  g = image_size // config.vision.patch_size
  n = g * g // config.vision.spatial_merge_size ** 2
  tokens = np.asarray([[config.vision_start_token_id] + [config.image_token_id] * n + [config.vision_end_token_id]])
  prep = prepare_inputs(config, tokens, np.ones(tokens.shape, np.int32), [(1, g, g)])
  fresh = model.init(jax.random.PRNGKey(seed), jnp.asarray(tokens), jnp.asarray(prep["positions"]),
                     pixel_values=jnp.zeros((g * g, config.vision.patch_dim)), patch_pos=jnp.asarray(prep["patch_pos"]),
                     patch_seg=jnp.asarray(prep["patch_seg"]))["params"]
  return model, graft_language_model(fresh, lm_params), tok, (rows[0], rows[-1] + 1)
