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

  from fixture_images import fixture_images  # noqa: E402  (the fixture's own image recipe)
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


def _image_inputs(exp, prep):
  return {"pixel_values": jnp.asarray(exp["pixel_values"]), "patch_pos": prep["patch_pos"],
          "patch_seg": prep["patch_seg"]}


def test_greedy_generation_with_images_matches_hf(loaded):
  """Prefill with the image features, then text-only decoding from the KV cache: HF's 16 greedy tokens."""
  model, params, exp = loaded
  tokens, prep = _inputs(model, exp)
  out = llm.generate(model, params, jnp.asarray(tokens), jnp.ones_like(tokens), jax.random.PRNGKey(0),
                     max_new_tokens=16, greedy=True, prompt_positions=jnp.asarray(prep["positions"]),
                     position_offset=jnp.asarray(prep["rope_deltas"]), model_inputs=_image_inputs(exp, prep))
  want = exp["generated"][0, tokens.shape[1]:]
  got = np.asarray(out["tokens"][0])[:len(want)]
  np.testing.assert_array_equal(got, want)


def test_sampled_image_logprobs_equal_token_logprobs(loaded):
  """Two left-padded image prompts (2 images and 1): the sampler's log-probs equal one forward pass's."""
  model, params, exp = loaded
  ids = exp["input_ids"][0].astype(np.int32)
  img = model.config.image_token_id
  first_end = np.flatnonzero(ids == img)[5] + 2          # the first image's 6 tokens and <|vision_end|>
  short = np.concatenate([ids[:first_end], ids[-6:]])    # one image, then the prompt's last tokens
  tokens, mask = llm.left_pad([ids, short], pad_id=0)
  grid = np.concatenate([exp["image_grid_thw"], exp["image_grid_thw"][:1]])
  n0 = int(np.prod(exp["image_grid_thw"][0]))
  pixels = np.concatenate([exp["pixel_values"], exp["pixel_values"][:n0]])
  prep = vlm.prepare_inputs(model.config, tokens, mask, grid)
  extra = {"pixel_values": jnp.asarray(pixels), "patch_pos": prep["patch_pos"], "patch_seg": prep["patch_seg"]}
  out = llm.generate(model, params, jnp.asarray(tokens), jnp.asarray(mask), jax.random.PRNGKey(3), max_new_tokens=8,
                     temperature=0.7, prompt_positions=jnp.asarray(prep["positions"]),
                     position_offset=jnp.asarray(prep["rope_deltas"]), model_inputs=extra)
  full = np.concatenate([tokens, np.asarray(out["tokens"])], axis=1)
  full_mask = np.concatenate([mask, np.asarray(out["completion_mask"])], axis=1)
  positions = vlm.prepare_inputs(model.config, full, full_mask, grid)["positions"]
  lp = llm.token_logprobs(model, params, jnp.asarray(full), jnp.asarray(full_mask), 0.7, positions=positions,
                          model_inputs=extra)
  p = tokens.shape[1]
  cm = np.asarray(out["completion_mask"]).astype(bool)
  np.testing.assert_allclose(np.asarray(lp)[:, p - 1:][cm], np.asarray(out["logprobs"])[cm], atol=2e-5)


def test_save_then_load_round_trips_and_names_bad_keys(loaded, tmp_path):
  import shutil

  from safetensors.numpy import load_file, save_file

  model, params, _ = loaded
  vlm.save_vlm(model, params, str(tmp_path / "rt"))
  _, again = vlm.load_vlm(str(tmp_path / "rt"))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # transformers 5's in-memory names load too
  tensors = load_file(str(tmp_path / "rt" / "model.safetensors"))
  renamed = {("model.visual." + k[7:] if k.startswith("visual.") else
              "model.language_model." + k[6:] if k.startswith("model.") else k): v for k, v in tensors.items()}
  shutil.copytree(tmp_path / "rt", tmp_path / "new")
  save_file(renamed, str(tmp_path / "new" / "model.safetensors"))
  _, new = vlm.load_vlm(str(tmp_path / "new"))
  np.testing.assert_array_equal(np.asarray(new["visual"]["merger"]["mlp_2"]["kernel"]),
                                np.asarray(params["visual"]["merger"]["mlp_2"]["kernel"]))
  # a missing vision tensor is named
  tensors.pop("visual.blocks.1.attn.qkv.bias")
  save_file(tensors, str(tmp_path / "rt" / "model.safetensors"))
  with pytest.raises(llm.CheckpointError, match="visual.blocks.1.attn.qkv.bias"):
    vlm.load_vlm(str(tmp_path / "rt"))


def test_transformers_loads_what_we_save(loaded, tmp_path):
  torch = pytest.importorskip("torch")
  import transformers

  model, params, exp = loaded
  vlm.save_vlm(model, params, str(tmp_path / "out"))
  hf = transformers.Qwen2VLForConditionalGeneration.from_pretrained(str(tmp_path / "out"),
                                                                 local_files_only=True).eval()
  ids = torch.as_tensor(exp["input_ids"].astype(np.int64))
  with torch.no_grad():
    logits = hf(input_ids=ids, pixel_values=torch.as_tensor(exp["pixel_values"]),
                image_grid_thw=torch.as_tensor(exp["image_grid_thw"]),
                mm_token_type_ids=(ids == model.config.image_token_id).int()).logits.numpy()
  np.testing.assert_allclose(logits, exp["logits"], atol=1e-4, rtol=1e-4)


def test_per_frame_layout_equals_the_packed_layout(loaded):
  """Frames of one size as [F, n, D] (attention per frame, no mask) give the packed [N, D] result."""
  model, params, exp = loaded
  n0 = int(np.prod(exp["image_grid_thw"][0]))
  grid = np.repeat(exp["image_grid_thw"][:1], 3, 0)
  pixels = np.concatenate([exp["pixel_values"][:n0]] * 3) + 0.1 * np.arange(3).repeat(n0)[:, None]
  tower = vlm.VisionTower(model.config.vision)
  m = model.config.vision.spatial_merge_size
  packed = tower.apply({"params": params["visual"]}, jnp.asarray(pixels), vlm.patch_positions(grid, m),
                       vlm.frame_segments(grid, m))
  frames = tower.apply({"params": params["visual"]}, jnp.asarray(pixels.reshape(3, n0, -1)),
                       vlm.patch_positions(grid, m).reshape(3, n0, 2))
  np.testing.assert_allclose(np.asarray(frames), np.asarray(packed), atol=1e-5)


def test_fsdp_sharded_load_gives_the_same_logits(loaded):
  """Params placed by jaxmed.llm.param_shardings on 8 simulated devices (vision tower included)."""
  from jaxmed import core

  model, params, exp = loaded
  mesh = core.make_mesh({"data": 2, "fsdp": 4})
  _, sharded = vlm.load_vlm(FIXTURE, mesh=mesh)
  qkv = sharded["visual"]["blocks_0"]["attn"]["qkv"]["kernel"]
  assert not qkv.sharding.is_fully_replicated  # the vision tower is sharded too
  tokens, prep = _inputs(model, exp)
  logits = model.apply({"params": sharded}, tokens, prep["positions"], pixel_values=exp["pixel_values"],
                       patch_pos=prep["patch_pos"], patch_seg=prep["patch_seg"])
  np.testing.assert_allclose(np.asarray(logits), exp["logits"], atol=1e-4, rtol=1e-4)
