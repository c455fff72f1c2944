"""Reptile settings measured on calibration subjects, never on the held-out ones.

  PYTHONPATH=. python -m experiments.svr.calibrate --workdir runs/svr_calibration [--meta runs/svr/meta_init_seed0]

With ``--severe DEG``: fit-setting variants (``SEVERE_VARIANTS``) under severe motion instead.

Calibration subjects (seeds 3000 + 10 i) are neither Reptile training subjects (1000+) nor held-out subjects
(6000+). Each Reptile variant (``--variants``: ``epochs:inner_steps``) is meta-learned on the demo's training
subjects and scored like the demo: steps for the meta init to reach the random init's final PSNR (and to come
within 0.5 dB of it), on each calibration subject, seed 0. Writes ``<workdir>/calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np

from experiments.svr import config as svr_config
from experiments.svr import train as svr_train
from experiments.svr.runs import run_fit, steps_to
from jaxmed import core, svr


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--subjects", type=int, default=2)
  ap.add_argument("--variants", default="3:400,10:400,3:800")
  ap.add_argument("--meta", default="", help="a saved meta-init of the first variant (e.g. the demo's seed 0)")
  ap.add_argument("--severe", type=float, default=0.0,
                  help="instead: fit settings at this rotation (deg, random walk with jumps), random init")
  args = ap.parse_args()
  os.makedirs(args.workdir, exist_ok=True)
  config = svr_config.get_config("demo")
  if args.severe:
    return severe(config, args)
  key = jax.random.PRNGKey(config.seed)
  k_meta, k_fit = jax.random.split(jax.random.fold_in(key, 0))  # the demo's seed-0 keys
  out = {}
  for i, variant in enumerate(args.variants.split(",")):
    epochs, inner = (int(v) for v in variant.split(":"))
    config.reptile.update({"epochs": epochs, "inner_steps": inner})
    vdir = os.path.join(args.workdir, f"reptile_{epochs}x{inner}")
    os.makedirs(vdir, exist_ok=True)
    if i == 0 and args.meta:
      meta = svr.load_meta_init(args.meta)
    else:
      meta = svr_train.meta_initialisation(config, vdir, k_meta, 0)
    for j in range(args.subjects):
      subject = svr_train.make_subject(config, 3000 + 10 * j)
      model = svr_train.build_model(config, subject["slices"])
      kw = svr_train.fit_kwargs(config, config.fit.steps)
      rec = {}
      for setting in ("random_init", "meta_init"):
        rec.update(run_fit(config, args.workdir if setting == "random_init" else vdir, subject, model, setting, meta,
                           k_fit, kw, tag=f"cal{j}", register=False))
      target = rec["history/random_init"][-1]["psnr"]
      out[f"{variant}/subject_{j}"] = {
          "psnr/random_init": rec["psnr/random_init"], "psnr/meta_init": rec["psnr/meta_init"],
          "steps_to_target/random_init": steps_to(rec["history/random_init"], target),
          "steps_to_target/meta_init": steps_to(rec["history/meta_init"], target),
          "steps_to_within_0.5dB/random_init": steps_to(rec["history/random_init"], target - 0.5),
          "steps_to_within_0.5dB/meta_init": steps_to(rec["history/meta_init"], target - 0.5),
          "psnr_at_step_0/meta_init": rec["history/meta_init"][0]["psnr"],
          "psnr_at_step_0/random_init": rec["history/random_init"][0]["psnr"]}
      print(variant, j, {k: round(float(v), 2) for k, v in out[f"{variant}/subject_{j}"].items()}, flush=True)
  core.write_json(os.path.join(args.workdir, "calibration.json"), out)
  print(json.dumps({k: {kk: float(np.round(vv, 2)) for kk, vv in v.items()} for k, v in out.items()}, indent=1))


SEVERE_VARIANTS = {"demo": {}, "lr_motion_3e-2": {"lr_motion": 3e-2}, "motion_from_0": {"start_motion": 0.0},
                   "no_drift": {"drift_weight": 0.0}, "halo_4mm": {"halo_mm": 4.0}}


def severe(config, args):
  """Fit-setting variants on calibration subjects under severe motion (random init, seed 0)."""
  key = jax.random.PRNGKey(config.seed)
  _, k_fit = jax.random.split(jax.random.fold_in(key, 0))
  level = float(args.severe)
  out = {}
  for name, change in SEVERE_VARIANTS.items():
    c = svr_config.get_config("demo")
    for k, v in change.items():
      group = "model" if k == "drift_weight" else "prep" if k == "halo_mm" else "fit"
      c[group][k] = v
    for j in range(args.subjects):
      subject = svr_train.make_subject(c, 3000 + 10 * j, motion="random_walk_jumps", max_rot_deg=level,
                                       max_trans_mm=min(level, 10.0))
      model = svr_train.build_model(c, subject["slices"])
      rec = run_fit(c, args.workdir, subject, model, "random_init", None, k_fit, svr_train.fit_kwargs(c, c.fit.steps),
                    tag=f"severe{level:g}_{name}_cal{j}", register=False)
      keep = svr.informative_slices(svr.pixel_counts(subject["slices"]))
      uncorrected = svr.motion_errors(np.zeros_like(subject["motion"]), subject["motion"], keep)[0]
      out[f"{name}/subject_{j}"] = {"psnr": rec["psnr/random_init"],
                                    "motion_err_deg": rec["motion_err_deg/random_init"],
                                    "motion_err_deg/nocorr": uncorrected}
      print(name, j, {k: round(float(v), 2) for k, v in out[f"{name}/subject_{j}"].items()}, flush=True)
  core.write_json(os.path.join(args.workdir, f"severe_{level:g}.json"), out)


if __name__ == "__main__":
  main()
