"""Parity with Hugging Face: logits, greedy generation, checkpoint round trip, and checkpoint errors."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxmed import llm
from jaxmed.llm.sampler import generate

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "hf")
FAMILIES = ("qwen2", "llama", "qwen3")


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request):
  path = os.path.join(FIXTURES, request.param)
  model, params = llm.load_pretrained(path)
  return path, model, params, np.load(os.path.join(path, "expected.npz"))


def test_logits_match_hf_float32(loaded):
  _, model, params, expected = loaded
  logits = model.apply({"params": params}, jnp.asarray(expected["input_ids"]))
  assert logits.shape == expected["logits"].shape
  np.testing.assert_allclose(np.asarray(logits), expected["logits"], atol=1e-4, rtol=0)


def test_greedy_generation_matches_hf(loaded):
  _, model, params, expected = loaded
  prompt = jnp.asarray(expected["prompt"])
  out = generate(model, params, prompt, jnp.ones_like(prompt), jax.random.PRNGKey(0), max_new_tokens=32, greedy=True,
                 eos_ids=model.config.eos_ids)
  hf_new = expected["generated"][0, prompt.shape[1]:]
  assert len(hf_new) == 32
  np.testing.assert_array_equal(np.asarray(out["tokens"][0]), hf_new)


def test_save_then_load_reproduces_params_exactly(loaded, tmp_path):
  path, model, params, expected = loaded
  llm.save_pretrained(model, params, str(tmp_path))
  model2, params2 = llm.load_pretrained(str(tmp_path))
  assert model2.config == model.config
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params2)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # the saved tensors are the HF ones, key for key
  np.testing.assert_array_equal(sorted(load_file(str(tmp_path / "model.safetensors"))),
                                sorted(load_file(os.path.join(path, "model.safetensors"))))
  # config.json names the architecture, as the fixture's (AutoModel, TRL and vLLM dispatch on it)
  with open(tmp_path / "config.json") as f, open(os.path.join(path, "config.json")) as g:
    assert json.load(f)["architectures"] == json.load(g)["architectures"]


def _corrupt(tmp_path, change):
  src = os.path.join(FIXTURES, "qwen2")
  dst = tmp_path / "ckpt"
  shutil.copytree(src, dst)
  tensors = load_file(str(dst / "model.safetensors"))
  change(tensors)
  save_file(tensors, str(dst / "model.safetensors"))
  return str(dst)


def test_malformed_checkpoints_name_the_key(tmp_path):
  key = "model.layers.1.mlp.up_proj.weight"
  with pytest.raises(llm.CheckpointError, match=f"'{key}' is missing"):
    llm.load_pretrained(_corrupt(tmp_path / "a", lambda t: t.pop(key)))
  with pytest.raises(llm.CheckpointError, match="unexpected tensor 'model.layers.0.extra.weight'"):
    llm.load_pretrained(_corrupt(tmp_path / "b", lambda t: t.update({"model.layers.0.extra.weight": np.ones(3)})))
  with pytest.raises(llm.CheckpointError, match=rf"'{key}' has shape \(128, 60\), expected \(128, 64\)"):
    llm.load_pretrained(_corrupt(tmp_path / "c", lambda t: t.update({key: t[key][:, :60].copy()})))
  with pytest.raises(llm.CheckpointError, match="config.json is missing"):
    llm.load_pretrained(str(tmp_path / "not_a_checkpoint"))
  os.remove(tmp_path / "c" / "ckpt" / "model.safetensors")
  with pytest.raises(llm.CheckpointError, match="no model.safetensors"):
    llm.load_pretrained(str(tmp_path / "c" / "ckpt"))


def test_sharded_checkpoint_with_index_loads(tmp_path):
  src = os.path.join(FIXTURES, "llama")
  tensors = load_file(os.path.join(src, "model.safetensors"))
  keys = sorted(tensors)
  shutil.copytree(src, tmp_path / "ck", ignore=shutil.ignore_patterns("model.safetensors"))
  halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
  for name, ks in halves.items():
    save_file({k: tensors[k] for k in ks}, str(tmp_path / "ck" / name))
  import json
  with open(tmp_path / "ck" / "model.safetensors.index.json", "w") as f:
    json.dump({"metadata": {}, "weight_map": {k: n for n, ks in halves.items() for k in ks}}, f)
  _, a = llm.load_pretrained(src)
  _, b = llm.load_pretrained(str(tmp_path / "ck"))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_transformers_loads_what_we_save(loaded, tmp_path):
  torch = pytest.importorskip("torch")  # the parity extra (CI installs it); the round trip above always runs
  import transformers

  _, model, params, expected = loaded
  llm.save_pretrained(model, params, str(tmp_path))
  hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), local_files_only=True,
                                                         dtype=torch.float32).eval()
  with torch.no_grad():
    logits = hf(torch.as_tensor(expected["input_ids"])).logits.numpy()
  np.testing.assert_allclose(logits, expected["logits"], atol=1e-4, rtol=0)


def test_bfloat16_compute_stays_close_to_float32(loaded):
  path, model, params, expected = loaded
  model16, params16 = llm.load_pretrained(path, dtype=jnp.bfloat16)
  assert model16.config.dtype == "bfloat16"
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params16))
  logits = np.asarray(model16.apply({"params": params16}, jnp.asarray(expected["input_ids"])))
  assert logits.dtype == np.float32  # logits are returned in float32
  scale = np.abs(expected["logits"]).max()
  assert np.abs(logits - expected["logits"]).max() < 0.05 * scale
  agree = np.mean(logits.argmax(-1) == expected["logits"].argmax(-1))
  assert agree > 0.9, agree
