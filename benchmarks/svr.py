"""Benchmark: SVR reconstruction time per subject; hash grid vs SIREN at equal PSNR, meta-init vs random init.

  python benchmarks/svr.py [--size 48] [--steps 1000] [--meta runs/svr/meta_init_seed0] [--json PATH]

One simulated subject (the experiment's phantom and stack simulator, no
motion correction so only the volume representations differ). Each fit is
compiled first (a 1-step warm-up per PSF level), then timed. The hash grid
runs ``--steps`` steps; the SIREN (the paper's 3 x 128 network, omega_0 = 30)
runs until it reaches the hash grid's final PSNR or ``2 x --steps``; the
ratio of their times to that PSNR is printed. Then the joint fit from random
init vs from a Reptile meta-initialisation (``--meta``: a saved one, else a
short Reptile over 3 subjects in this run): time and steps for the meta-init
to reach the random-init final PSNR, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the experiments package

from experiments.svr import config as svr_config  # noqa: E402
from experiments.svr import runs as svr_runs  # noqa: E402
from experiments.svr import train as svr_train  # noqa: E402
from jaxmed import svr  # noqa: E402


def timed_fit(model, subject, kw, eval_every, target=None, params=None):
  """Fit with a PSNR history; returns (history, seconds, seconds-to-target) with compilation excluded."""
  sl = subject["slices"]
  for k in sorted({svr.psf_ramp(i, kw["steps"], kw["psf_max"], kw["psf_schedule"]) for i in range(kw["steps"])}):
    svr.fit(model, sl, key=jax.random.PRNGKey(1), progress=None, **dict(kw, steps=1, psf_max=k, psf_schedule="none"))
  times = []

  def ev(p):
    times.append(time.perf_counter())
    return svr_runs.evaluate_volume(model, p, subject)

  t0 = time.perf_counter()
  _, hist = svr.fit(model, sl, params=params, key=jax.random.PRNGKey(0), eval_fn=ev, eval_every=eval_every,
                    progress=None, **kw)
  total = time.perf_counter() - t0
  hit = next((times[i] - t0 for i, h in enumerate(hist) if target is not None and h["psnr"] >= target), float("nan"))
  return hist, total, hit


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--size", type=int, default=48)
  ap.add_argument("--steps", type=int, default=1000)
  ap.add_argument("--meta", default="")
  ap.add_argument("--json", default="", help="write the figures to this path")
  args = ap.parse_args()
  config = svr_config.get_config("demo")
  config.data.size = args.size
  subject = svr_train.make_subject(config, 7000)
  sl = subject["slices"]
  config.fit.steps = args.steps  # the horizon of every fit, Reptile's inner fits included
  config.reptile.inner_steps = min(config.reptile.inner_steps, args.steps)
  kw = svr_train.fit_kwargs(config, args.steps)
  every = max(args.steps // 20, 1)
  print(f"subject: {args.size}^3 phantom, {len(sl['stack'])} slices, {int(sl['num_pixels'])} pixels, "
        f"{config.fit.samples_per_step} volume samples per step, {jax.devices()[0].platform}")

  hash_model = svr_train.build_model(config, sl, correct_motion=False)
  h_hist, h_time, _ = timed_fit(hash_model, subject, kw, every)
  target = h_hist[-1]["psnr"]
  config.model.volume = "siren"
  siren_model = svr_train.build_model(config, sl, correct_motion=False)
  s_kw = dict(kw, steps=2 * args.steps, horizon=2 * args.steps, lrs=dict(kw["lrs"], volume=1e-4), level_steps=0)
  s_hist, s_time, s_hit = timed_fit(siren_model, subject, s_kw, every, target)
  print(f"hash grid: {args.steps} steps, {h_time:.1f} s ({1e3 * h_time / args.steps:.1f} ms/step), "
        f"final PSNR {target:.2f} dB")
  print(f"SIREN:     {2 * args.steps} steps, {s_time:.1f} s ({1e3 * s_time / (2 * args.steps):.1f} ms/step), "
        f"final PSNR {s_hist[-1]['psnr']:.2f} dB, time to {target:.2f} dB: {s_hit:.1f} s")
  print(f"SIREN / hash grid time to equal PSNR = {s_hit / h_time:.2f}x" if np.isfinite(s_hit) else
        "SIREN / hash grid time to equal PSNR: SIREN did not reach the hash grid's PSNR")

  config.model.volume = "hash"
  model = svr_train.build_model(config, sl)
  if args.meta:
    meta = svr.load_meta_init(args.meta)
  else:
    config.data.num_meta = 3
    meta = svr_train.meta_initialisation(config, "/tmp/jaxmed_bench_svr", jax.random.PRNGKey(2))
  r_hist, r_time, _ = timed_fit(model, subject, kw, every)
  target = r_hist[-1]["psnr"]
  m_hist, _, m_hit = timed_fit(model, subject, kw, every, target, params=dict(meta))
  m_steps = next((h["step"] for h in m_hist if h["psnr"] >= target), float("nan"))
  print(f"random init: final PSNR {target:.2f} dB after {args.steps} steps, {r_time:.1f} s")
  print(f"meta init:   reaches it at step {m_steps} ({m_hit:.1f} s); final {m_hist[-1]['psnr']:.2f} dB")
  print(f"meta / random time to the random-init final PSNR = {m_hit / r_time:.2f}x")
  if args.json:
    from jaxmed import core
    core.write_json(args.json, {
        "hash/s": h_time, "hash/ms_per_step": 1e3 * h_time / args.steps, "hash/final_psnr": h_hist[-1]["psnr"],
        "siren/s": s_time, "siren/time_to_hash_psnr_s": s_hit, "ratio/siren_vs_hash_time": s_hit / h_time,
        "random/s": r_time, "random/final_psnr": target, "meta/time_to_target_s": m_hit,
        "meta/final_psnr": m_hist[-1]["psnr"], "ratio/meta_vs_random_time": m_hit / r_time,
        "size": args.size, "steps": args.steps})


if __name__ == "__main__":
  main()
