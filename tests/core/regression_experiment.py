"""A minimal experiment built only from jaxmed.core, used to test the core machinery.

It has the shape every ``experiments/<name>/train.py`` has: one linear
``train_and_evaluate(config, workdir)``. The model is a 2-layer MLP fitted to
a noisy linear target, small enough to run in a second.

Run as a module to exercise the absl pattern::

  python -m tests.core.regression_experiment --workdir=/tmp/r --config.train.steps=5
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxmed import core


def get_config(preset: str = "tiny") -> ml_collections.ConfigDict:
  core.check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = ml_collections.ConfigDict(dict(n=256, dim=8, noise=0.1))
  c.model = ml_collections.ConfigDict(dict(hidden=32, dropout=0.1))
  c.train = ml_collections.ConfigDict(dict(steps=20, batch_size=32, lr=1e-2, log_every=1, save_every=5,
                                           keep=3))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  return c


class MLP(nn.Module):
  hidden: int
  dropout: float

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.gelu(nn.Dense(self.hidden)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(1)(x)[..., 0]


def make_data(config):
  rng = np.random.default_rng(config.seed)
  x = rng.normal(size=(config.data.n, config.data.dim)).astype(np.float32)
  w = rng.normal(size=(config.data.dim,)).astype(np.float32)
  y = (x @ w + config.data.noise * rng.normal(size=config.data.n)).astype(np.float32)
  return {"x": x, "y": y}


def train_and_evaluate(config, workdir: str, devices=None) -> dict:
  core.open_workdir(workdir, config)

  # ---- data ----
  arrays = make_data(config)
  dataset = core.step_batches(core.ArraySource(arrays), batch_size=config.train.batch_size, seed=config.seed)

  # ---- model ----
  mesh = core.make_mesh(config.mesh, devices=devices)
  model = MLP(config.model.hidden, config.model.dropout)
  tx = optax.adam(config.train.lr)
  state, sharding = core.create_train_state(
      lambda r: model.init(r, jnp.zeros((1, config.data.dim)), train=False), tx,
      jax.random.PRNGKey(config.seed), mesh)

  def loss_fn(params, batch, rng):
    pred = model.apply(params, batch["x"], train=True, rngs={"dropout": rng})
    return jnp.mean((pred - batch["y"]) ** 2), {}

  train_step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)

  # ---- train ----
  state = core.train_loop(state, train_step, lambda step: dataset[step], mesh=mesh, run_dir=workdir,
                          steps=config.train.steps, save_every=config.train.save_every, keep=config.train.keep,
                          log_every=config.train.log_every)

  # ---- evaluate ----
  pred = model.apply(state.params, arrays["x"], train=False)
  mse = float(jnp.mean((pred - arrays["y"]) ** 2))
  return core.write_results(workdir, {"mse": mse, "steps": int(state.step)})


if __name__ == "__main__":
  core.run_main(train_and_evaluate, os.path.abspath(__file__))
