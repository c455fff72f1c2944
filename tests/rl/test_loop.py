"""The shared GRPO run: it learns, and a run killed mid-way resumes to bitwise the uninterrupted params."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmed import core, llm, rl
from jaxmed.rl import rewards as R

CONFIG = llm.LMConfig(family="llama", vocab_size=16, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                      num_kv_heads=1, head_dim=16, tie_embeddings=True)
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
GROUP = 4


class Killed(Exception):
  pass


@pytest.fixture
def target_reward(monkeypatch):
  """A reward the tiny policy can learn: the share of '3' tokens in the completion."""
  monkeypatch.setitem(R.REWARDS, "threes", lambda text, ex: text.split().count("3") / max(len(text.split()), 1))


def run(run_dir, steps, kill_at=None):
  model = llm.Decoder(CONFIG)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]
  mesh = core.make_mesh({"data": 1, "fsdp": 1, "model": 1}, devices=jax.devices()[:1])

  def sample_fn(p, examples, rng):
    if kill_at is not None and examples[0]["step"] == kill_at:
      raise Killed
    batch = rl.rollout(model, p, [ex["prompt"] for ex in examples], rng, group_size=GROUP, max_new_tokens=5,
                       pad_to=4)
    texts = [" ".join(map(str, c[m])) for c, m in zip(np.asarray(batch["completion"]),
                                                      np.asarray(batch["mask"]).astype(bool))]
    return batch, texts

  def examples_at(step):
    pick = np.random.default_rng([0, step]).choice(len(PROMPTS), 2, replace=False)
    return [{"prompt": PROMPTS[i], "question": str(i), "answer": "A", "step": step} for i in pick]

  return rl.grpo_train(str(run_dir), params=params, tx=rl.grpo_optimizer(3e-2, steps), mesh=mesh,
                       logp_fn=rl.lm_logp_fn(model, group_size=GROUP, with_entropy=True), sample_fn=sample_fn,
                       examples_at=examples_at, reward_weights={"threes": 1.0}, steps=steps, group_size=GROUP,
                       beta=0.04, ref_params=params, save_every=2, log_completions_every=1)


def test_killed_grpo_run_resumes_bitwise_and_logs_each_step_once(tmp_path, target_reward):
  full, rows = run(tmp_path / "full", 6)
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  for key in ("entropy", "clip_low", "clip_high", "frac_reward_zero_std", "kl", "reward/threes_mean"):
    assert all(np.isfinite(r[key]) for r in rows), key
  with pytest.raises(Killed):
    run(tmp_path / "resumed", 6, kill_at=4)   # dies in step 5 (index 4), after the checkpoint of step 4
  assert [r["step"] for r in core.read_metrics(str(tmp_path / "resumed"))] == [1, 2, 3, 4]
  resumed, rows2 = run(tmp_path / "resumed", 6)
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert [r["step"] for r in rows2] == [1, 2, 3, 4, 5, 6]
  for a, b in zip(rows, rows2):
    assert a["reward_mean"] == b["reward_mean"] and a["loss"] == b["loss"]
  logged = core.read_metrics(str(tmp_path / "resumed"), "completions.jsonl")
  assert [r["step"] for r in logged] == [s for s in range(1, 7) for _ in range(GROUP)]


def test_grpo_train_raises_the_reward(tmp_path, target_reward):
  _, rows = run(tmp_path / "learn", 16)
  assert rows[0]["reward_mean"] < 0.2 and np.mean([r["reward_mean"] for r in rows[-3:]]) > 0.5, \
      [round(r["reward_mean"], 2) for r in rows]
