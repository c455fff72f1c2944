"""Qwen2-VL Hugging Face checkpoints <-> jaxmed params.

Checkpoints on disk use the released layout: ``visual.*`` for the vision
tower, ``model.*`` for the language model and ``lm_head.weight``
(transformers 5 writes this layout too). transformers 5's in-memory names
(``model.visual.*``, ``model.language_model.*``) are accepted as well.
The language model's table is :func:`jaxmed.llm.hf_param_map`'s; every key is
consumed exactly once and each mismatch raises
:class:`~jaxmed.llm.CheckpointError` naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jaxmed.core.checkpoint import reading_checkpoint
from jaxmed.llm.hf import CheckpointError, export_hf, hf_param_map, iter_tensors, read_tensors, tensors_to_params
from jaxmed.vlm.config import VLMConfig
from jaxmed.vlm.model import Qwen2VL


def _patch_transforms(config: VLMConfig) -> dict:
  """The patch embedding is a Conv3d weight ``[E, C, T, P, P]`` in HF and a Dense kernel ``[C*T*P*P, E]`` here."""
  v = config.vision
  conv = (v.embed_dim, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
  return {"patch": (lambda a: a.reshape(a.shape[0], -1).T, lambda shape: conv, lambda a: a.T.reshape(conv))}


def vlm_param_map(config: VLMConfig) -> dict[tuple[str, ...], tuple[str, str]]:
  """``{param path: (HF key, transform)}`` for :class:`~jaxmed.vlm.model.Qwen2VL`."""
  m = {("language_model",) + path: value for path, value in hf_param_map(config.text).items()}
  m[("visual", "patch_embed", "kernel")] = ("visual.patch_embed.proj.weight", "patch")
  dense = lambda path, key: {path + ("kernel",): (key + ".weight", "T"), path + ("bias",): (key + ".bias", "id")}  # noqa: E731
  norm = lambda path, key: {path + ("scale",): (key + ".weight", "id"), path + ("bias",): (key + ".bias", "id")}  # noqa: E731
  for i in range(config.vision.depth):
    pre, hf = ("visual", f"blocks_{i}"), f"visual.blocks.{i}"
    m.update(norm(pre + ("norm1",), hf + ".norm1"))
    m.update(norm(pre + ("norm2",), hf + ".norm2"))
    m.update(dense(pre + ("attn", "qkv"), hf + ".attn.qkv"))
    m.update(dense(pre + ("attn", "proj"), hf + ".attn.proj"))
    m.update(dense(pre + ("fc1",), hf + ".mlp.fc1"))
    m.update(dense(pre + ("fc2",), hf + ".mlp.fc2"))
  m.update(norm(("visual", "merger", "ln_q"), "visual.merger.ln_q"))
  m.update(dense(("visual", "merger", "mlp_0"), "visual.merger.mlp.0"))
  m.update(dense(("visual", "merger", "mlp_2"), "visual.merger.mlp.2"))
  return m


def _released_layout(key: str) -> str:
  for new, old in (("model.visual.", "visual."), ("model.language_model.", "model.")):
    if key.startswith(new):
      return old + key[len(new):]
  return key


def _abstract(model: Qwen2VL) -> Any:
  v = model.config.vision
  m2 = v.spatial_merge_size ** 2
  tokens = jnp.full((1, 1), model.config.image_token_id, jnp.int32)   # one merged image token from m2 patches
  return jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), tokens, jnp.zeros((3, 1, 1), jnp.int32), pixel_values=jnp.zeros((m2, v.patch_dim)),
      patch_pos=jnp.zeros((m2, 2), jnp.int32), patch_seg=jnp.zeros((m2,), jnp.int32)))["params"]


def load_vlm(local_dir: str, *, mesh: Mesh | None = None, dtype: Any = jnp.float32,
             compute_dtype: str | None = None) -> tuple[Qwen2VL, dict]:
  """``(model, params)`` from a local Qwen2-VL checkpoint directory (never downloads)."""
  import transformers

  if not os.path.exists(os.path.join(local_dir, "config.json")):
    raise CheckpointError(f"{local_dir}: config.json is missing")
  with reading_checkpoint(os.path.join(local_dir, "config.json"), "a transformers Qwen2-VL config (JSON)"):
    hf_config = transformers.AutoConfig.from_pretrained(local_dir, local_files_only=True)
  try:
    config = VLMConfig.from_hf(hf_config, dtype=compute_dtype or jnp.dtype(dtype).name)
  except ValueError as e:
    raise CheckpointError(f"{os.path.join(local_dir, 'config.json')}: {e}") from None
  model = Qwen2VL(config)
  raw, origin = read_tensors(local_dir)
  tensors, where = {}, {}
  for key, value in raw.items():
    name = _released_layout(key)
    if name in tensors:
      raise CheckpointError(f"{origin[key]}: tensor {key!r} duplicates {name!r}")
    tensors[name], where[name] = value, origin[key]
  if config.text.tie_embeddings:
    tensors.pop("lm_head.weight", None)
  params = tensors_to_params(tensors, where, vlm_param_map(config), _abstract(model), where=local_dir, dtype=dtype,
                             mesh=mesh, transforms=_patch_transforms(config), what="the Qwen2-VL model")
  return model, params


def _with_qkv_bias(config: VLMConfig, params: dict) -> tuple[VLMConfig, dict]:
  """``config`` and ``params`` with zero q/k/v biases added when the language model has none."""
  if config.text.qkv_bias:
    return config, params
  lm = dict(params["language_model"])
  for name, layer in lm.items():
    if name.startswith("layers_"):
      attn = {k: dict(v, bias=jnp.zeros(v["kernel"].shape[-1], v["kernel"].dtype))
              if k in ("q_proj", "k_proj", "v_proj") else v for k, v in layer["self_attn"].items()}
      lm[name] = dict(layer, self_attn=attn)
  text = dataclasses.replace(config.text, family="qwen2", qkv_bias=True)
  return dataclasses.replace(config, text=text), dict(params, language_model=lm)


def save_vlm(model: Qwen2VL, params: dict, local_dir: str, *, dtype: Any = None, extras: Sequence = (),
             max_shard_size: int = 5 * 2 ** 30) -> None:
  """Writes ``config.json`` and the safetensors weights (released layout) that transformers loads.

  Sharded above ``max_shard_size`` bytes and gathered param by param as in
  :func:`jaxmed.llm.save_pretrained`. ``extras`` (tokenizer, image processor) are saved into the same
  directory; the directory appears atomically (:func:`jaxmed.core.atomic_stage`). A language model without q/k/v
  biases (a Llama decoder grafted by :func:`jaxmed.vlm.graft_language_model`) is written with zero biases,
  which is the same function in Qwen2-VL's layout; it loads back as a Qwen2 decoder.
  """
  config, params = _with_qkv_bias(model.config, params)
  tensors = iter_tensors(params, vlm_param_map(config), dtype=dtype, transforms=_patch_transforms(config))
  export_hf(local_dir, config.to_hf(), tensors, extras=extras, max_shard_size=max_shard_size)
