"""GRPO with images: rollouts and the update from jaxmed.rl, with the vision-language policy's extra inputs."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmed import core, llm, vlm
from jaxmed.rl.loop import make_grpo_step, place_state
from jaxmed.vlm.rollout import vlm_logp_fn, vlm_rollout

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf", "qwen2_vl")


@pytest.fixture(scope="module")
def rollout_batch():
  model, params = vlm.load_vlm(FIXTURE)
  exp = dict(np.load(os.path.join(FIXTURE, "expected.npz")))
  ids = exp["input_ids"][0].astype(np.int32)
  n0 = int(np.prod(exp["image_grid_thw"][0]))
  first_end = np.flatnonzero(ids == model.config.image_token_id)[5] + 2
  prompts = [ids[:first_end], np.concatenate([ids[:first_end], ids[-5:]])]   # same image size, other texts
  pixels = [exp["pixel_values"][:n0]] * 2
  grids = [exp["image_grid_thw"][:1]] * 2
  batch = vlm_rollout(model, params, prompts, pixels, grids, jax.random.PRNGKey(0), group_size=4,
                      max_new_tokens=6, temperature=1.0)
  return model, params, batch


def test_trainer_logprobs_equal_sampler_logprobs_with_images(rollout_batch):
  model, params, batch = rollout_batch
  assert batch["pixel_values"].shape[0] == batch["completion"].shape[0] == 8
  lp = vlm_logp_fn(model, 1.0)(params, batch)
  m = np.asarray(batch["mask"]).astype(bool)
  np.testing.assert_allclose(np.asarray(lp)[m], np.asarray(batch["old_logp"])[m], atol=2e-5)


def test_shared_prefix_logprobs_and_gradients_equal_the_plain_path(rollout_batch):
  """Each (prompt, image) encoded once for its group (M-RoPE positions, pixels of the group's first row)
  gives the plain concatenated pass's log-probs, entropy-free, and the same gradient, vision tower included,
  with every decoder layer and vision block recomputed in the backward pass (remat)."""
  model, params, batch = rollout_batch
  m = np.asarray(batch["mask"]).astype(bool)
  remat = llm.with_options(model, remat="full")
  assert remat.config.vision.remat and remat.config.text.remat == "full"
  plain, shared = vlm_logp_fn(model), vlm_logp_fn(remat, group_size=4, chunk=64)
  np.testing.assert_allclose(np.asarray(shared(params, batch))[m], np.asarray(plain(params, batch))[m], atol=2e-5)
  w = jnp.asarray(np.random.default_rng(1).standard_normal(m.shape), jnp.float32)
  g_plain = jax.grad(lambda p: jnp.sum(plain(p, batch) * w * batch["mask"]))(params)
  g_shared = jax.grad(lambda p: jnp.sum(shared(p, batch) * w * batch["mask"]))(params)
  assert float(jnp.abs(g_plain["visual"]["merger"]["mlp_0"]["kernel"]).max()) > 0
  for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_shared)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-5, rtol=1e-4)


def test_image_update_on_the_mesh_equals_one_device(rollout_batch):
  """Rows (with their images) split over 8 devices give the single-device update; the ratio starts at 1."""
  model, params, batch = rollout_batch
  batch = dict(batch, advantages=jnp.asarray(np.random.default_rng(0).standard_normal(8), jnp.float32))
  tx = optax.sgd(1.0)  # linear in the gradient (Adam's first step would amplify rounding where |g| ~ eps)

  def once(mesh=None):
    state, sharding = place_state(params, tx, 0, mesh)
    update = make_grpo_step(vlm_logp_fn(model), tx, state_sharding=sharding if mesh else None, mesh=mesh)
    b = jax.device_put(dict(batch), core.batch_sharding(mesh)) if mesh else batch
    state, metrics = update(state, b, jax.random.PRNGKey(0))
    return state.params, metrics

  p1, m1 = once()
  assert float(m1["clip_fraction"]) == 0.0
  p2, _ = once(core.make_mesh({"data": 2, "fsdp": 4}))
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), p1, params))
  assert max(moved) > 1e-3  # the update did something, including through the vision tower
  assert float(jnp.abs(p1["visual"]["patch_embed"]["kernel"] - params["visual"]["patch_embed"]["kernel"]).max()) > 0


def test_rollout_rejects_mixed_image_sizes(rollout_batch):
  model, params, _ = rollout_batch
  with pytest.raises(ValueError, match="same patch grid"):
    vlm_rollout(model, params, [[1, 2], [1, 2]], [np.zeros((24, 1176)), np.zeros((24, 1176))],
                [np.array([[1, 4, 6]]), np.array([[1, 6, 4]])], jax.random.PRNGKey(0), group_size=2,
                max_new_tokens=2)


def test_an_image_token_sampled_in_a_completion_stays_text(rollout_batch):
  """Row 0's completion holding <|image_pad|> does not take an image feature: the other rows' log-probs (whose
  image features would shift by one slot if it did) are unchanged, and row 0's stay finite."""
  model, params, batch = rollout_batch
  comp = np.asarray(batch["completion"]).copy()
  comp[0, 0] = model.config.image_token_id          # as if the policy had sampled the image token
  forged = dict(batch, completion=jnp.asarray(comp))
  before = np.asarray(vlm_logp_fn(model)(params, batch))
  after = np.asarray(vlm_logp_fn(model)(params, forged))
  m = np.asarray(batch["mask"]).astype(bool)
  np.testing.assert_allclose(after[1:][m[1:]], before[1:][m[1:]], atol=1e-6)
  assert np.isfinite(after[0]).all()
