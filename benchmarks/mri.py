"""Benchmark: SENSE forward + adjoint throughput (jitted JAX vs NumPy, same operator) and the demo train step.

  python benchmarks/mri.py [--size 128] [--frames 16] [--coils 12] [--repeats 20] [--json PATH]

The baseline for the operator is a plain NumPy implementation of the same
``A = M F S`` and ``A^H`` (centred orthonormal FFTs), run in the same
process; both are checked to agree first. The train step is the SSFL-Recon
``demo`` network's parallel self-supervised step (two reconstructions, batch
2), compiled once and timed over ``--repeats`` steps. ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import mri
from jaxmed.synth.cine import birdcage_maps

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the experiments package
from figures import write_figures  # noqa: E402 (benchmarks/ is on the path when run as a script)


def numpy_sense(x, maps, mask):
  k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(maps[None] * x[:, None], axes=(-2, -1)), norm="ortho"),
                      axes=(-2, -1)) * mask[:, None, None, :]
  img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
  return (np.conj(maps)[None] * img).sum(1)


def timed(fn, repeats):
  fn()
  t = time.perf_counter()
  for _ in range(repeats):
    fn()
  return (time.perf_counter() - t) / repeats


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--frames", type=int, default=16)
  parser.add_argument("--coils", type=int, default=12)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--json", default="", help="write the figures to this JSON file")
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  t, h, c = args.frames, args.size, args.coils
  x = (rng.standard_normal((t, h, h)) + 1j * rng.standard_normal((t, h, h))).astype(np.complex64)
  maps = birdcage_maps(h, h, c)
  mask = mri.vista_mask(h, t, 8, seed=0).astype(np.float32)
  op = jax.jit(lambda x: mri.sense_adjoint(mri.sense_forward(x, maps, mask), maps, mask))
  xj = jnp.asarray(x)
  np.testing.assert_allclose(np.asarray(op(xj)), numpy_sense(x, maps, mask), atol=1e-4)
  t_jax = timed(lambda: jax.block_until_ready(op(xj)), args.repeats)
  t_np = timed(lambda: numpy_sense(x, maps, mask), max(3, args.repeats // 4))
  voxels = t * h * h
  print(f"device: {jax.devices()[0].platform}; image {t}x{h}x{h}, {c} coils")
  print(f"sense_fwd_adj/numpy: {1e3 * t_np:.1f} ms ({voxels / t_np / 1e6:.1f} Mvoxel/s) (baseline)")
  print(f"sense_fwd_adj/jax: {1e3 * t_jax:.1f} ms ({voxels / t_jax / 1e6:.1f} Mvoxel/s) ({t_np / t_jax:.1f}x numpy)")

  from experiments.ssfl_recon import config as cfg_mod
  from experiments.ssfl_recon import data as D
  from experiments.ssfl_recon import train as T
  config = cfg_mod.get_config("demo")
  config.data.num_train = 2
  subjects = D.training_subjects(config, config.data.acquired_r)
  net = T.recon_net(config)
  batch = D.parallel_batch(subjects, config, 0, config.train.batch_size, config.data.view_r)
  x0, y = T.zero_filled(batch["kspace"], batch["maps"], batch["m1"])
  params = net.init(jax.random.PRNGKey(0), x0, y, batch["maps"], batch["m1"])
  tx = optax.adam(1e-3)
  opt = tx.init(params)
  loss_fn = T.make_loss("parallel", net)

  @jax.jit
  def train_step(params, opt, batch):
    g = jax.grad(lambda p: loss_fn(p, batch, None)[0])(params)
    u, opt = tx.update(g, opt)
    return optax.apply_updates(params, u), opt

  state = [params, opt]

  def one():
    state[0], state[1] = train_step(state[0], state[1], batch)
    jax.block_until_ready(state[0])

  t_step = timed(one, max(3, args.repeats // 4))
  n = sum(v.size for v in jax.tree.leaves(params))
  print(f"ssfl_demo_train_step: {1e3 * t_step:.0f} ms/step (parallel loss, batch {config.train.batch_size}, "
        f"{config.data.frames}x{config.data.shape[0]}x{config.data.shape[1]}, {n / 1e3:.0f}k params)")
  write_figures(args.json, {"sense_fwd_adj/numpy_ms": 1e3 * t_np, "sense_fwd_adj/jax_ms": 1e3 * t_jax,
                            "sense_fwd_adj/jax_over_numpy": t_np / t_jax, "ssfl_demo_train_step/ms": 1e3 * t_step,
                            "ssfl_demo_train_step/params": int(n)})


if __name__ == "__main__":
  main()
