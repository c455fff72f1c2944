"""How the demo's seizure difficulty (``data.mimic_rate``) was chosen, on a cohort the demo never sees.

  python -m experiments.eeg_fm.calibrate --workdir=runs/eeg_calibrate --rates=0,0.05,0.1

For each mimic rate: a seizure cohort drawn with ``config.seed = 7`` (the demo's is 0, so no demo recording, and
least of all its test split, takes part), EEGNet and BIOT from scratch and the untrained OTiS with a linear
probe, as the demo trains them. The target (issue 34): the untrained OTiS at least 0.05 AUROC below the best
trained model, and the best trained model at least 0.03 below the oracle (AUROC 1). Prints one line per rate.
"""

from __future__ import annotations

import os

import jax
from absl import app, flags

from experiments.eeg_fm import config as eeg_config
from experiments.eeg_fm import data as eeg_data
from experiments.eeg_fm import train
from jaxmed import core, eeg

flags.DEFINE_string("workdir", "runs/eeg_calibrate", "where the calibration cohorts and stages go")
flags.DEFINE_list("rates", ["0", "0.05", "0.1"], "mimic rates (bursts per second) to try")
FLAGS = flags.FLAGS


def seizure_aurocs(rate: float, workdir: str) -> dict:
  """``{row: test AUROC}`` for one mimic rate on the calibration cohort (seed 7, seizure task only)."""
  c = eeg_config.get_config("demo")
  c.seed = 7
  c.data.mimic_rate = rate
  c.data.update({"age_train": 1, "age_test": 1, "event_train": 1, "event_test": 1})
  root = os.path.join(workdir, f"rate{rate:g}")
  eeg_data.write_cohorts(c, os.path.join(root, "edf"))
  cohorts = eeg_data.read_cohorts(c, os.path.join(root, "edf"))
  w = {s: eeg_data.task_windows("seizure", cohorts["seizure"][s], c.data.window_s) for s in ("train", "test")}
  mesh = core.make_mesh(c.mesh)
  out = {}
  for name in ("eegnet", "biot"):
    model = train.baseline_model(c, name, "seizure")
    init = lambda r, model=model: model.init(r, w["train"]["x"][:2])  # noqa: E731
    scores, _, _ = train.supervised(c, root, f"scratch_{name}", "seizure", model, init, w, mesh, "scratch", 41)
    out[name] = eeg.task_metric("seizure", "auroc", w["test"]["y"], scores)
  enc = train.general_model(c, "otis")
  variables = enc.init(jax.random.PRNGKey(99), w["train"]["x"][:1])
  feat = jax.jit(lambda x: eeg.features_fn(enc)(variables, x))
  probe = eeg.linear_probe("seizure", train.batched(feat, w["train"]["x"]), w["train"]["y"],
                           train.batched(feat, w["test"]["x"]))
  out["untrained_otis"] = eeg.task_metric("seizure", "auroc", w["test"]["y"], probe)
  return out


def main(argv):
  del argv
  for rate in (float(r) for r in FLAGS.rates):
    a = seizure_aurocs(rate, FLAGS.workdir)
    best = max(a["eegnet"], a["biot"])
    print(f"mimic_rate {rate:g}: eegnet {a['eegnet']:.3f}  biot {a['biot']:.3f}  untrained_otis "
          f"{a['untrained_otis']:.3f}  | best - untrained {best - a['untrained_otis']:.3f} (>= 0.05)  "
          f"oracle - best {1 - best:.3f} (>= 0.03)", flush=True)


if __name__ == "__main__":
  app.run(main)
