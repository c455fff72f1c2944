"""End-to-end properties of the core loop, on the regression experiment."""

import json
import os

import jax
import numpy as np
import pytest

from jaxmed import core
from tests.core import regression_experiment as reg


def _final_params(workdir, config):
  """Restores the latest checkpoint of a finished run into a fresh state."""
  import flax.linen  # noqa: F401
  import jax.numpy as jnp
  import optax
  model = reg.MLP(config.model.hidden, config.model.dropout)
  mesh = core.make_mesh(config.mesh, devices=jax.devices()[:1])
  state, _ = core.create_train_state(lambda r: model.init(r, jnp.zeros((1, config.data.dim)), train=False),
                                     optax.adam(config.train.lr), jax.random.PRNGKey(123), mesh)
  manager = core.checkpoint_manager(workdir, save_every=1)
  state, step = core.restore_latest(manager, state)
  manager.close()
  return state, step


def test_one_device_and_eight_device_data_parallel_give_same_loss_curve(tmp_path):
  config = reg.get_config()
  assert jax.device_count() == 8
  reg.train_and_evaluate(config, str(tmp_path / "one"), devices=jax.devices()[:1])
  reg.train_and_evaluate(config, str(tmp_path / "eight"), devices=jax.devices())
  one = [r["loss"] for r in core.read_metrics(str(tmp_path / "one"))]
  eight = [r["loss"] for r in core.read_metrics(str(tmp_path / "eight"))]
  assert len(one) == len(eight) == config.train.steps
  np.testing.assert_allclose(eight, one, rtol=1e-6, atol=1e-6)
  assert one[-1] < 0.5 * one[0]  # it actually learns


class _Preempted(Exception):
  pass


def test_resume_after_interruption_is_bitwise_equal(tmp_path, monkeypatch):
  config = reg.get_config()  # 20 steps, checkpoint every 5, keep 3
  full = str(tmp_path / "full")
  reg.train_and_evaluate(config, full)

  resumed = str(tmp_path / "resumed")
  real_step_batches = core.step_batches

  class PreemptAt12:
    def __init__(self, ds):
      self.ds = ds

    def __getitem__(self, step):
      if step == 12:  # 12 steps are done; the 13th never starts
        raise _Preempted()
      return self.ds[step]

  monkeypatch.setattr(reg.core, "step_batches", lambda *a, **k: PreemptAt12(real_step_batches(*a, **k)))
  with pytest.raises(_Preempted):
    reg.train_and_evaluate(config, resumed)
  assert [r["step"] for r in core.read_metrics(resumed)] == list(range(1, 13))
  monkeypatch.setattr(reg.core, "step_batches", real_step_batches)
  reg.train_and_evaluate(config, resumed)  # the same command again: resumes from step 10

  steps = [r["step"] for r in core.read_metrics(resumed)]
  assert steps == list(range(1, 21)), steps  # no duplicates, none missing
  a, sa = _final_params(full, config)
  b, sb = _final_params(resumed, config)
  assert sa == sb == 20
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert [r["loss"] for r in core.read_metrics(full)] == [r["loss"] for r in core.read_metrics(resumed)]
  kept = sorted(int(d) for d in os.listdir(os.path.join(resumed, "checkpoints")) if d.isdigit())
  assert kept == [10, 15, 20]
  with open(os.path.join(resumed, "results.json")) as f:
    results = json.load(f)
  for key in ("mse", "wall_time_s", "jax_version", "device_kind"):
    assert key in results


def test_injected_nan_stops_run_and_last_checkpoint_restores(tmp_path, monkeypatch):
  config = reg.get_config()
  real = reg.make_data

  def poisoned(c):
    d = real(c)
    d["x"] = d["x"].copy()
    d["x"][:, 0] = np.nan  # every batch is poisoned from here on ...
    return d

  # ... but only from step 8: swap the dataset's source after the first 7 steps.
  real_step_batches = core.step_batches

  class Switch:
    def __init__(self, good, bad):
      self.good, self.bad = good, bad

    def __getitem__(self, step):
      return (self.good if step < 7 else self.bad)[step]

  def step_batches(source, **kw):
    good = real_step_batches(source, **kw)
    bad = real_step_batches(core.ArraySource(poisoned(config)), **kw)
    return Switch(good, bad)

  monkeypatch.setattr(reg.core, "step_batches", step_batches)
  workdir = str(tmp_path / "nan")
  with pytest.raises(core.NonFiniteError, match=r"step 8: .*loss=nan.*checkpoint \(step 5\) is intact"):
    reg.train_and_evaluate(config, workdir)
  state, step = _final_params(workdir, config)
  assert step == 5
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_train_step_compiles_once(tmp_path):
  import jax.numpy as jnp
  import optax
  config = reg.get_config()
  mesh = core.make_mesh(config.mesh)
  model = reg.MLP(8, 0.1)
  tx = optax.sgd(0.1)
  state, sharding = core.create_train_state(lambda r: model.init(r, jnp.zeros((1, 8)), train=False), tx,
                                            jax.random.PRNGKey(0), mesh)

  def loss_fn(params, batch, rng):
    p = model.apply(params, batch["x"], train=True, rngs={"dropout": rng})
    return jnp.mean((p - batch["y"]) ** 2), {"mean_pred": p.mean()}

  train_step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  ds = core.step_batches(core.ArraySource(reg.make_data(config)), batch_size=16, seed=0)
  with core.count_compiles("train_step") as compiles:
    for step in range(10):
      state, metrics = train_step(state, core.shard_batch(ds[step], mesh), core.step_rng(state, step))
  assert compiles.count == 1
  assert int(state.step) == 10 and set(metrics) == {"loss", "grad_norm", "mean_pred"}
