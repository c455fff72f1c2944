"""Benchmark: one hypernetwork + a K-lambda sweep against K dedicated trainings; vmap sweep against a loop.

  python benchmarks/arc.py [--steps 100] [--k 16] [--size 64]

Both sides use the same network, data, batch size and step count, and the
same compiled step per side (compilation is excluded: each step function is
warmed up first). Prints ``name: value unit (ratio vs baseline)``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core
from jaxmed import registration as R
from jaxmed.synth import NUM_LABELS, atlas_subjects, registration_pairs


def _loss(register, lam, batch):
  disp, field = register(batch["moving"], batch["fixed"])
  a, b = R.loss_weights(lam)
  return a * R.ncc_loss(batch["fixed"], R.warp(batch["moving"], disp)) + b * R.gradient_loss(field), {}


def _timed_training(step_fn, state, batches, steps):
  state, m = step_fn(state, batches(0), jax.random.PRNGKey(0))  # warm-up (compile), not timed
  jax.block_until_ready(m)
  t = time.perf_counter()
  for s in range(steps):
    state, m = step_fn(state, batches(s), jax.random.PRNGKey(s))
  jax.block_until_ready(m)
  return time.perf_counter() - t, state


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", type=int, default=100)
  ap.add_argument("--k", type=int, default=16)
  ap.add_argument("--size", type=int, default=64)
  ap.add_argument("--batch", type=int, default=4)
  args = ap.parse_args()

  shape = (args.size, args.size)
  data = atlas_subjects(16, shape, seed=0)
  val = atlas_subjects(6, shape, seed=1)
  images = data["images"][..., None]
  pairs = registration_pairs(16, 10_000, seed=0)
  batches = lambda s: {"moving": images[pairs[s * args.batch:(s + 1) * args.batch, 0]],  # noqa: E731
                       "fixed": images[pairs[s * args.batch:(s + 1) * args.batch, 1]]}
  net = R.registration_net("vxm", "svf", ndim=2, encoder=(8, 16, 16, 16), decoder=(16, 16, 16, 16),
                           final=(16, 8, 8))
  example = jnp.zeros((1, *shape, 1))
  mesh = core.make_mesh(devices=jax.devices()[:1])
  tx = optax.adam(1e-3)

  # Hypernetwork: one training over lambda, then a K-lambda ARC sweep.
  hm = R.make_hypermorph(net, example.shape)

  def hyper_loss(hp, batch, rng):
    lam = R.sample_lambdas(rng, 1)[0]
    return _loss(lambda m, f: hm.apply(hp, lam, m, f), lam, batch)

  hyper_tx = optax.multi_transform({"head_kernel": optax.adam(1e-3 / 16), "rest": tx}, R.head_kernel_labels)
  state, sh = core.create_train_state(hm.init, hyper_tx, jax.random.PRNGKey(0), mesh)
  t_hyper, state = _timed_training(core.make_train_step(hyper_loss, hyper_tx, state_sharding=sh, mesh=mesh), state,
                                   batches, args.steps)
  hp = state.params
  vm, vf = jnp.asarray(val["images"][:3, ..., None]), jnp.asarray(val["images"][3:, ..., None])
  vml, vfl = jnp.asarray(val["labels"][:3]), jnp.asarray(val["labels"][3:])
  kw = dict(labels=tuple(range(1, NUM_LABELS)), num_labels=NUM_LABELS)
  register = lambda lam, m, f: hm.apply(hp, lam, m, f)[0]  # noqa: E731
  lams = jnp.linspace(0, 1, args.k)
  sweep = jax.jit(lambda lam: R.arc_points(register, lam, vm, vf, vml, vfl, **kw))
  jax.block_until_ready(sweep(lams))
  t = time.perf_counter()
  jax.block_until_ready(sweep(lams))
  t_sweep = time.perf_counter() - t
  chunked = jax.jit(lambda lam: R.arc_points(register, lam, vm, vf, vml, vfl, lambda_batch_size=1, **kw))
  jax.block_until_ready(chunked(lams))
  t = time.perf_counter()
  jax.block_until_ready(chunked(lams))
  t_chunked = time.perf_counter() - t
  single = jax.jit(lambda lam: R.arc_points(register, lam[None], vm, vf, vml, vfl, **kw))
  jax.block_until_ready(single(lams[0]))
  t = time.perf_counter()
  for lam in lams:
    jax.block_until_ready(single(lam))
  t_loop = time.perf_counter() - t

  # Dedicated: K separate trainings of the same step count (lambda travels in the batch: one compiled step).
  def ded_loss(params, batch, rng):
    return _loss(lambda m, f: net.apply(params, m, f), batch["lambda"][0], batch)

  init_state, sh = core.create_train_state(lambda r: net.init(r, example, example), tx, jax.random.PRNGKey(0), mesh)
  ded_step = core.make_train_step(ded_loss, tx, state_sharding=sh, mesh=mesh)
  t_dedicated = 0.0
  for lam in np.linspace(0, 1, args.k):
    with_lam = lambda s, lam=lam: {**batches(s), "lambda": np.full(args.batch, lam, np.float32)}  # noqa: E731
    dt, _ = _timed_training(ded_step, jax.tree.map(jnp.copy, init_state), with_lam, args.steps)
    t_dedicated += dt

  hyper_total = t_hyper + t_sweep
  print(f"device: {core.device_kind()}, image {shape}, batch {args.batch}, {args.steps} steps, K={args.k}")
  print(f"hypernetwork_training: {t_hyper:.2f} s")
  print(f"arc_sweep_vmap_K{args.k}: {t_sweep:.3f} s")
  print(f"dedicated_trainings_K{args.k}: {t_dedicated:.2f} s (baseline)")
  print(f"hypernetwork_plus_sweep: {hyper_total:.2f} s ({hyper_total / t_dedicated:.3f}x vs {args.k} dedicated "
        "trainings)")
  print(f"arc_sweep_python_loop_K{args.k}: {t_loop:.3f} s (baseline)")
  print(f"arc_sweep_vmap_vs_loop: {t_sweep:.3f} s ({t_sweep / t_loop:.3f}x vs Python loop over lambda)")
  print(f"arc_sweep_lax_map_vs_loop: {t_chunked:.3f} s ({t_chunked / t_loop:.3f}x vs Python loop over lambda; "
        "lambda_batch_size=1)")


if __name__ == "__main__":
  main()
