"""ViTa's networks and the training of one stage, shared by the stages (:mod:`experiments.vita.train`) and the
ablation arms (:mod:`experiments.vita.arms`)."""

from __future__ import annotations

import os

import jax
import optax

from jaxmed import cardiac, core
from jaxmed.cardiac import preprocess
from jaxmed.synth import heart


def image_encoder(config, shape) -> cardiac.CineEncoder:
  m = config.model
  return cardiac.CineEncoder(shape, 3, tuple(m.patch), m.dim, m.depth, m.heads, m.ln_epsilon)


def tabular_encoder(config) -> cardiac.TabularEncoder:
  m = config.model
  return cardiac.TabularEncoder(len(heart.NUMERICAL), len(heart.BINARY),
                                tuple(len(v) for v in heart.CATEGORICAL.values()), m.tab_dim, m.tab_depth, m.heads)


def fit(config, run_dir, init_fn, loss_fn, arrays, stage, mesh, seed) -> dict:
  """One stage through :func:`jaxmed.core.train_loop` (resumable); ``arrays``: the training rows."""
  s, t = config[stage], config.train
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, s.lr, max(1, s.steps // 10), s.steps),
                   weight_decay=t.weight_decay)
  ds = core.step_batches(core.ArraySource(arrays), batch_size=s.batch_size, seed=seed)
  state, sharding = core.create_train_state(init_fn, tx, jax.random.PRNGKey(seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, lambda i: ds[i], mesh=mesh, run_dir=run_dir, steps=s.steps,
                          save_every=t.save_every, keep=t.keep, log_every=t.log_every,
                          desc=os.path.basename(run_dir))
  return jax.device_get(state.params)


def tab_inputs(part, idx=slice(None)):
  """The tabular encoder's inputs for rows ``idx`` of a cohort split."""
  return part["numerical_z"][idx], part["binary"][idx], part["categorical"][idx]


def maybe_augment(flag, rng, cine):
  return preprocess.augment_batch(rng, cine) if flag else cine


