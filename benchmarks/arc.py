"""Benchmark: the hypernetwork against K dedicated trainings at equal quality; the lambda sweep; paper-scale memory.

  python benchmarks/arc.py [--size 64] [--steps 1000] [--hyper-steps 3000] [--json PATH] [--skip-paper]

Three parts, all on one machine in one run:

1. **Equal quality.** K = 3 dedicated models (lambda = 0.1, 0.5, 0.9) are
   trained separately for ``--steps`` each; the hypernetwork is trained for up
   to ``--hyper-steps`` and evaluated on the validation pairs every
   ``--eval-every`` steps. Its time to quality is the first step at which its
   Dice at every lambda is within 0.01 of that lambda's dedicated model,
   times its best-of-5 step time; the baseline is K x ``--steps`` x the
   dedicated best-of-5 step time. ``speedup/hyper_vs_dedicated`` is
   baseline / hypernetwork (higher is better), and for an ARC of 11 lambdas
   the dedicated side would need 11 trainings (``speedup/hyper_vs_dedicated_k11``).
2. **Sweep.** 16 lambdas: a Python loop over a jitted one-lambda evaluation
   (no vmap), ``lax.map`` (``lambda_batch_size=1``) and the full ``vmap``,
   each the best of 5 after a warm-up.
3. **Paper scale.** One hypernetwork train step (batch 1) and one ARC sweep
   chunk (19 pairs) at 160x192x224, compiled on this machine for the paper
   preset's networks (bf16 compute, half-resolution SVF, remat); peak memory
   from ``compile().memory_analysis()`` (nothing is run). The sweep's lambda
   chunk is the largest that fits ``arc.memory_budget_gb``.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.arc import config as arc_config
from jaxmed import core
from jaxmed import registration as R
from jaxmed.synth import NUM_LABELS, atlas_subjects, registration_pairs

DED_LAMS = (0.1, 0.5, 0.9)


def _loss(register, lam, batch):
  disp, field = register(batch["moving"], batch["fixed"])
  a, b = R.loss_weights(lam)
  return a * R.ncc_loss(batch["fixed"], R.warp(batch["moving"], disp)) + b * R.gradient_loss(field), {}


def best_of(fn, repeats=5):
  """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return min(times)


def step_time(step_fn, state, batch, block=10, repeats=5):
  """Best of ``repeats`` (after a warm-up) of the mean step time over ``block`` steps from a fresh copy of ``state``.

  The step donates its state, so each repeat starts from its own copy, made
  outside the timed region.
  """
  times = []
  for r in range(repeats + 1):
    s = jax.block_until_ready(jax.tree.map(jnp.copy, state))
    t = time.perf_counter()
    for i in range(block):
      s, m = step_fn(s, batch, jax.random.PRNGKey(i))
    jax.block_until_ready(m)
    if r:  # the first repeat compiles
      times.append((time.perf_counter() - t) / block)
  return min(times)


def equal_quality(args, out):
  shape = (args.size, args.size)
  data, val = atlas_subjects(32, shape, seed=0), atlas_subjects(8, shape, seed=1)
  images = data["images"][..., None]
  pairs = registration_pairs(32, 20_000, seed=0)
  vp = registration_pairs(8, 16, seed=2)

  def batches(s):
    idx = pairs[s * args.batch:(s + 1) * args.batch]
    return {"moving": images[idx[:, 0]], "fixed": images[idx[:, 1]]}

  vm, vf = jnp.asarray(val["images"][vp[:, 0], ..., None]), jnp.asarray(val["images"][vp[:, 1], ..., None])
  vml, vfl = jnp.asarray(val["labels"][vp[:, 0]]), jnp.asarray(val["labels"][vp[:, 1]])
  kw = dict(labels=tuple(range(1, NUM_LABELS)), num_labels=NUM_LABELS)
  cfg = arc_config.get_config("demo")
  net = R.registration_net("vxm", "svf", ndim=2, **cfg.net.to_dict())
  example = jnp.zeros((1, *shape, 1))
  mesh = core.make_mesh(devices=jax.devices()[:1])
  tx = optax.adam(cfg.train.lr)

  # Dedicated: K separate trainings, each its own loop (lambda in the batch: one compiled step).
  def ded_loss(params, batch, rng):
    return _loss(lambda m, f: net.apply(params, m, f), batch["lambda"][0], batch)

  init_state, sh = core.create_train_state(lambda r: net.init(r, example, example), tx, jax.random.PRNGKey(0), mesh)
  ded_step = core.make_train_step(ded_loss, tx, state_sharding=sh, mesh=mesh)
  ded_dice, ded_eval = [], jax.jit(lambda p, lam: R.arc_points(lambda l, m, f: net.apply(p, m, f)[0], lam, vm, vf,
                                                                 vml, vfl, **kw)["dice"].mean())
  t_ded_step = step_time(ded_step, jax.tree.map(jnp.copy, init_state), {**batches(0), "lambda": np.full(
      args.batch, 0.5, np.float32)})
  for lam in DED_LAMS:
    state = jax.tree.map(jnp.copy, init_state)
    for s in range(args.steps):
      state, _ = ded_step(state, {**batches(s), "lambda": np.full(args.batch, lam, np.float32)}, jax.random.PRNGKey(s))
    ded_dice.append(float(ded_eval(state.params, jnp.float32(lam))))

  # Hypernetwork: one training, evaluated at the K lambdas as it goes.
  hm = R.make_hypermorph(net, example.shape, hidden=cfg.hyper.hidden, head_scale=cfg.hyper.head_scale)

  def hyper_loss(hp, batch, rng):
    lam = R.sample_lambdas(rng, 1, endpoint_prob=cfg.hyper.endpoint_prob)[0]
    return _loss(lambda m, f: hm.apply(hp, lam, m, f), lam, batch)

  hyper_tx = optax.multi_transform({"head_kernel": optax.adam(cfg.train.lr * cfg.hyper.head_kernel_lr_scale),
                                    "rest": tx}, R.head_kernel_labels)
  state, sh = core.create_train_state(hm.init, hyper_tx, jax.random.PRNGKey(0), mesh)
  hyper_step = core.make_train_step(hyper_loss, hyper_tx, state_sharding=sh, mesh=mesh)
  t_hyper_step = step_time(hyper_step, jax.tree.map(jnp.copy, state), batches(0))
  hyper_eval = jax.jit(lambda hp: R.arc_points(lambda l, m, f: hm.apply(hp, l, m, f)[0], jnp.asarray(DED_LAMS), vm,
                                               vf, vml, vfl, lambda_batch_size=1, **kw)["dice"].mean(axis=1))
  reached, curve = None, []
  for s in range(args.hyper_steps):
    state, _ = hyper_step(state, batches(s), jax.random.PRNGKey(s))
    if (s + 1) % args.eval_every == 0:
      dice = np.asarray(hyper_eval(state.params))
      curve.append([s + 1, *dice.tolist()])
      if reached is None and np.all(dice >= np.asarray(ded_dice) - 0.01):
        reached = s + 1
  t_ded = len(DED_LAMS) * args.steps * t_ded_step
  out.update({"dedicated/step_s": t_ded_step, "hyper/step_s": t_hyper_step, "dedicated/dice": ded_dice,
              "hyper/dice_curve": curve, "hyper/steps_to_quality": reached, "dedicated/total_s_k3": t_ded})
  print(f"step time: dedicated {t_ded_step * 1e3:.1f} ms, hypernetwork {t_hyper_step * 1e3:.1f} ms (best of 5)")
  print(f"dedicated Dice at {DED_LAMS}: {np.round(ded_dice, 3).tolist()} after {args.steps} steps each")
  if reached is None:
    print(f"hypernetwork: not within 0.01 Dice of every dedicated model in {args.hyper_steps} steps "
          f"(last {np.round(curve[-1][1:], 3).tolist()})")
    return
  t_hyper = reached * t_hyper_step
  out["hyper/time_to_quality_s"] = t_hyper
  out["speedup/hyper_vs_dedicated"] = t_ded / t_hyper
  out["speedup/hyper_vs_dedicated_k11"] = 11 * args.steps * t_ded_step / t_hyper
  print(f"hypernetwork within 0.01 Dice of all 3 dedicated models at step {reached}: {t_hyper:.1f} s vs "
        f"{t_ded:.1f} s for 3 dedicated trainings ({t_ded / t_hyper:.2f}x; "
        f"{out['speedup/hyper_vs_dedicated_k11']:.2f}x "
        "against 11 dedicated trainings)")


def sweep(args, out):
  shape = (args.size, args.size)
  val = atlas_subjects(8, shape, seed=1)
  cfg = arc_config.get_config("demo")
  net = R.registration_net("vxm", "svf", ndim=2, **cfg.net.to_dict())
  hm = R.make_hypermorph(net, (1, *shape, 1), hidden=cfg.hyper.hidden)
  hp = hm.init(jax.random.PRNGKey(0))
  m, f = jnp.asarray(val["images"][:4, ..., None]), jnp.asarray(val["images"][4:, ..., None])
  ml, fl = jnp.asarray(val["labels"][:4]), jnp.asarray(val["labels"][4:])
  kw = dict(labels=tuple(range(1, NUM_LABELS)), num_labels=NUM_LABELS)
  register = lambda lam, mm, ff: hm.apply(hp, lam, mm, ff)[0]  # noqa: E731
  lams = jnp.linspace(0, 1, 16)
  single = jax.jit(lambda lam: R.arc_points(register, lam, m, f, ml, fl, **kw))  # a scalar lambda: no vmap
  t_loop = best_of(lambda: [single(lam) for lam in lams][-1])
  mapped = jax.jit(lambda lam: R.arc_points(register, lam, m, f, ml, fl, lambda_batch_size=1, **kw))
  t_map = best_of(lambda: mapped(lams))
  vmapped = jax.jit(lambda lam: R.arc_points(register, lam, m, f, ml, fl, **kw))
  t_vmap = best_of(lambda: vmapped(lams))
  out.update({"sweep/loop_s": t_loop, "sweep/lax_map_s": t_map, "sweep/vmap_s": t_vmap})
  print(f"sweep of 16 lambdas (best of 5): loop {t_loop:.3f} s (baseline), lax.map {t_map:.3f} s "
        f"({t_map / t_loop:.2f}x), vmap {t_vmap:.3f} s ({t_vmap / t_loop:.2f}x)")


def paper_memory(args, out):
  cfg = arc_config.get_config("paper")
  shape, gb = tuple(cfg.data.shape), 2.0 ** 30
  dtype = jnp.dtype(cfg.arc.compute_dtype)
  num_labels = 36  # OASIS: 35 structures and background
  for arch in args.paper_archs:
    net = R.registration_net(arch, "svf", ndim=3, **cfg.net.to_dict())
    hm = R.make_hypermorph(net, (1, *shape, 1), hidden=cfg.hyper.hidden)
    hp = jax.eval_shape(hm.init, jax.random.PRNGKey(0))
    tx = optax.adam(cfg.train.lr)
    opt = jax.eval_shape(tx.init, hp)
    img = jax.ShapeDtypeStruct((cfg.train.batch_size, *shape, 1), jnp.float32)

    def step(hp, opt, m, f, rng):
      lam = R.sample_lambdas(rng, 1)[0]
      grads = jax.grad(lambda p: _loss(lambda a, b: hm.apply(p, lam, a, b, dtype=dtype), lam,
                                       {"moving": m, "fixed": f})[0])(hp)
      updates, opt = tx.update(grads, opt, hp)
      return optax.apply_updates(hp, updates), opt

    t = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(hp, opt, img, img, jax.random.PRNGKey(0)).compile()
    step_gb = R.compiled_peak_bytes(compiled) / gb
    n = cfg.data.n_val_pairs
    vimg = jax.ShapeDtypeStruct((n, *shape, 1), jnp.float32)
    vlab = jax.ShapeDtypeStruct((n, *shape), jnp.uint8)

    def points(lam, hp, m, f, ml, fl, k=None):
      return R.arc_points(lambda l, a, b: hm.apply(hp, l, a, b, dtype=dtype)[0], lam, m, f, ml, fl,
                          labels=tuple(range(1, num_labels)), num_labels=num_labels, lambda_batch_size=k,
                          pair_batch_size=cfg.eval.pair_batch_size or None)

    def sweep_peak(k, total):
      lowered = jax.jit(lambda lam, *a: points(lam, *a, k=k)).lower(
          jax.ShapeDtypeStruct((total,), jnp.float32), hp, vimg, vimg, vlab, vlab)
      return R.compiled_peak_bytes(lowered.compile())

    one, two = sweep_peak(None, 1), sweep_peak(None, 2)
    per_lambda = max(two - one, 1)
    k = int(np.clip((cfg.arc.memory_budget_gb * gb - (one - per_lambda)) // per_lambda, 1, 14))
    sweep_gb = sweep_peak(k, 14) / gb
    dt = time.perf_counter() - t
    key = "paper" if arch == args.paper_archs[0] else f"paper/{arch}"
    out.update({f"{key}/step_peak_gb": step_gb, f"{key}/sweep_peak_gb": sweep_gb, f"{key}/sweep_lambda_batch": k,
                f"{key}/params": R.count_params(jax.eval_shape(net.init, jax.random.PRNGKey(0), img, img))})
    print(f"paper {arch}-svf at {shape}, bf16, half-res SVF, remat: train step peak {step_gb:.1f} GB; sweep of 14 "
          f"lambdas x {n} pairs in chunks of {k} lambdas x {cfg.eval.pair_batch_size} pairs: peak {sweep_gb:.1f} GB "
          f"(budget {cfg.arc.memory_budget_gb:g} GB; "
          f"compiled in {dt:.0f} s)")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--size", type=int, default=64)
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--steps", type=int, default=arc_config.get_config("demo").train.steps)
  ap.add_argument("--hyper-steps", type=int, default=3000)
  ap.add_argument("--eval-every", type=int, default=100)
  ap.add_argument("--paper-archs", nargs="+", default=["vxm", "lku", "tm"])
  ap.add_argument("--skip-paper", action="store_true")
  ap.add_argument("--skip-quality", action="store_true")
  ap.add_argument("--json", default="")
  args = ap.parse_args()
  out = {"device": core.device_kind()}
  print(f"device: {out['device']}")
  if not args.skip_paper:
    paper_memory(args, out)
  sweep(args, out)
  if not args.skip_quality:
    equal_quality(args, out)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
