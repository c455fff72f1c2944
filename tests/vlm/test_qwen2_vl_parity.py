"""Parity of jaxmed's Qwen2-VL with the committed tiny HF checkpoint (tests/fixtures/make_hf_fixtures.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import llm, vlm
from jaxmed.vlm import processor

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf", "qwen2_vl")


@pytest.fixture(scope="module")
def loaded():
  model, params = vlm.load_vlm(FIXTURE)
  return model, params, dict(np.load(os.path.join(FIXTURE, "expected.npz")))


def _inputs(model, exp):
  tokens = exp["input_ids"].astype(np.int32)
  prep = vlm.prepare_inputs(model.config, tokens, np.ones_like(tokens), exp["image_grid_thw"])
  return tokens, prep


def test_processor_reproduces_the_fixture_inputs(loaded):
  """Our chat template + transformers' image processor give the ids and pixels HF's outputs were made from."""
  import sys
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
  from PIL import Image

  from make_hf_fixtures import fixture_images  # noqa: E402  (the fixture's own image recipe; needs no torch)
  _, _, exp = loaded
  tok = llm.load_tokenizer(FIXTURE)
  messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "The patient has chest pain."},
                                           {"type": "image"}, {"type": "text", "text": "The answer is"}]}]
  enc = processor.encode(tok, processor.load_image_processor(FIXTURE), messages,
                         [Image.fromarray(a) for a in fixture_images()])
  np.testing.assert_array_equal(enc["input_ids"], exp["input_ids"][0])
  np.testing.assert_array_equal(enc["image_grid_thw"], exp["image_grid_thw"])
  np.testing.assert_allclose(enc["pixel_values"], exp["pixel_values"], atol=1e-6)


def test_mrope_positions_match_hf(loaded):
  model, _, exp = loaded
  _, prep = _inputs(model, exp)
  np.testing.assert_array_equal(prep["positions"], exp["position_ids"])
  # text after the last image resumes at its start + max(h, w) / merge; decoding continues from max + 1
  assert prep["rope_deltas"][0] == exp["position_ids"].max() + 1 - exp["input_ids"].shape[1]


def test_vision_tower_matches_hf(loaded):
  model, params, exp = loaded
  _, prep = _inputs(model, exp)
  merged, hidden = vlm.VisionTower(model.config.vision).apply(
      {"params": params["visual"]}, jnp.asarray(exp["pixel_values"]), prep["patch_pos"], prep["patch_seg"],
      return_hidden=True)
  np.testing.assert_allclose(np.asarray(hidden), exp["vision_hidden"], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(merged), exp["vision_merged"], atol=1e-4, rtol=1e-4)


def test_image_text_logits_match_hf_float32(loaded):
  model, params, exp = loaded
  tokens, prep = _inputs(model, exp)
  logits = model.apply({"params": params}, tokens, prep["positions"], pixel_values=exp["pixel_values"],
                       patch_pos=prep["patch_pos"], patch_seg=prep["patch_seg"])
  assert np.abs(exp["logits"]).max() > 1.0  # far from uniform
  np.testing.assert_allclose(np.asarray(logits), exp["logits"], atol=1e-4, rtol=1e-4)


def test_mrope_with_equal_axes_is_the_1d_rotary():
  """Three equal position rows rotate exactly like the 1D rotary embedding."""
  from jaxmed.llm.model import apply_rope

  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 3, 16))
  pos = jnp.arange(10).reshape(2, 5) * 7
  inv = 1.0 / (10000.0 ** (jnp.arange(0, 16, 2) / 16))
  np.testing.assert_allclose(np.asarray(apply_rope(x, jnp.stack([pos] * 3), inv, (2, 3, 3))),
                             np.asarray(apply_rope(x, pos, inv)), atol=1e-6)
  # ... and each section follows only its own axis
  moved = jnp.stack([pos, pos + 3, pos])
  diff = np.abs(np.asarray(apply_rope(x, moved, inv, (2, 3, 3)) - apply_rope(x, pos, inv)))
  assert diff[..., 2:5].max() > 1e-3 and diff[..., 10:13].max() > 1e-3   # height section, both halves
  assert diff[..., :2].max() < 1e-6 and diff[..., 5:8].max() < 1e-6


def test_mismatched_image_tokens_fail_clearly(loaded):
  model, _, exp = loaded
  tokens = exp["input_ids"].astype(np.int32)
  short = np.delete(tokens, np.flatnonzero(tokens[0] == model.config.image_token_id)[0], axis=1)
  with pytest.raises(ValueError, match="image tokens, but image_grid_thw"):
    vlm.prepare_inputs(model.config, short, np.ones_like(short), exp["image_grid_thw"])
  with pytest.raises(ValueError, match="has 1 images but the tokens hold 2|more image-token runs"):
    vlm.prepare_inputs(model.config, tokens, np.ones_like(tokens), exp["image_grid_thw"][:1])
