"""The stump classifier's evidence: a phantom cohort whose answer is not built in, its Bayes bound, and CIs.

* **Ribs.** The lowest (T12) ribs of ``num_cohort_train`` training phantoms (seeds 20000+) and
  ``num_cohort_test`` test phantoms (seeds 30000+), two per phantom, stump or full with probability
  ``stump_probability``; their shapes come from overlapping class Gaussians (``jaxmed.synth.ribs.RIB_DISTRIBUTIONS``)
  plus anatomical noise (vertebra rotation, scoliosis, partial fusion). Each test phantom is measured twice: full
  field of view, and cut ``partial_lateral_mm`` lateral of the midline (the partial view; the classifier was trained
  on full views, as the local features do not depend on the cut).
* **Measurement.** Features are measured on the phantoms' voxelised label masks (the input an external rib mask
  gives): binary mask -> assignment (no component floor: the thinnest 15 mm stumps hold ~90 mm^3, under the U-Net
  path's 150 mm^3 floor) -> length path -> features in the vertebra frame. This isolates how well the
  method *measures* from how well our small U-Net segments (that is reported on the segmented CTs).
* **Bounds.** ``bayes_f1``: the best F1 any classifier of the four generating variables can reach (Monte Carlo on the
  generative model, the same for both views since the local variables are the same); ``oracle_variables``: a
  logistic regression on the drawn variables themselves, trained and tested on the same ribs (the ceiling at this
  sample size); ``all_stump``: calling every rib a stump (the floor, F1 = 2p / (1 + p)).
* **Classifier inputs.** Local features only (``CLASSIFIER_FEATURES``): no length and nothing beyond the first
  ~13 mm (stumps are at least 15 mm long, so a feature further out would read the stump's end, i.e. its length,
  which the bound does not include).
* **Missed ribs count**: a true lowest rib that assignment did not give to T12 stays in the test set, called "not a
  stump" (a false negative when it is one); the training set keeps only found ribs.
* **CIs**: 95% cluster bootstrap over test phantoms (a phantom's two ribs share a spine).
"""

from __future__ import annotations

import numpy as np

from jaxmed import core, ribs
from jaxmed.synth import ribs as phantoms

FEATURE_SETS = {
    "official": tuple(n for n in ribs.OFFICIAL_FEATURES if "path_20mm" not in n),
    "ours": ribs.LOCAL_FEATURES,
}
VARIABLES = tuple(phantoms.RIB_DISTRIBUTIONS)


def measure_cohort(config, seeds, *, partial: bool, desc: str) -> tuple[list[dict], list[dict]]:
  """Full-view (and, with ``partial``, partial-view) lowest-rib records of the phantoms of ``seeds``.

  A test cohort (``partial``) keeps a ``missed`` record for every true lowest rib assignment did not find; a
  training cohort holds the found ribs only."""
  from experiments.ribs.train import LOWEST, analyse, partial_view
  d = config.data
  full, cut = [], []
  with core.progress_bar(len(seeds), desc=desc) as bar:
    for seed in seeds:
      ph = phantoms.thoracolumbar_phantom(d.spacing, seed=seed, stump_probability=d.stump_probability,
                                          with_ct=False)
      _, recs = analyse(config, ph["rib_mask"], ph, vertebrae=(LOWEST,), min_component_mm3=0.0)
      full += _with_missed(recs, ph, seed, keep_missed=partial)
      if partial:
        view = partial_view(config, ph, seed + 1)
        _, recs = analyse(config, view["rib_mask"], view, vertebrae=(LOWEST,), min_component_mm3=0.0)
        cut += _with_missed(recs, view, seed)
      core.update_progress(bar, 1)
  return full, cut


def _with_missed(recs: list[dict], ph: dict, seed: int, keep_missed: bool = True) -> list[dict]:
  """The measured lowest ribs, plus a ``missed`` record for each true lowest rib that assignment did not find."""
  from experiments.ribs.train import LOWEST
  found = [{**r, "phantom": seed, "missed": False} for r in recs if r["truth"] is not None]
  if not keep_missed:
    return found
  sides = {r["left"] for r in found}
  return found + [{"truth": t, "left": t["left"], "phantom": seed, "missed": True, "features": {}}
                  for t in ph["ribs"] if t["vertebra"] == LOWEST and t["left"] not in sides]


def _labels(recs: list[dict]) -> np.ndarray:
  return np.array([r["truth"]["stump"] for r in recs], int)


def _f1(y, pred) -> float:
  from sklearn.metrics import f1_score
  return float(f1_score(y, pred, zero_division=0.0))


def with_ci(results: dict, key: str, y, pred, groups, seed: int) -> None:
  """``results[key]`` = F1, ``results[key + "_ci"]`` = its 95% cluster-bootstrap interval."""
  value, lo, hi = core.bootstrap_metric(_f1, y, [pred], groups=groups, seed=seed)
  results[key], results[key + "_ci"] = value, [lo, hi]


def evaluate_cohort(config, train: list[dict], views: dict[str, list[dict]]) -> dict:
  """Classifiers on both feature sets, the oracle and floor, the Bayes bound; F1 with CIs per view. ``train``:
  found ribs only (:func:`measure_cohort` without ``partial``)."""
  c = config.classifier
  out: dict = {}
  y_train = _labels(train)
  bound = phantoms.bayes_f1(config.data.stump_probability)
  oracle = ribs.fit_stump_classifier(_variables(train), y_train, "logistic", seed=config.seed)
  for view, recs in views.items():
    y = _labels(recs)
    groups = np.array([r["phantom"] for r in recs])
    out[f"num_ribs/cohort/{view}"], out[f"num_stumps/cohort/{view}"] = float(len(y)), float(y.sum())
    out[f"cohort/missed_ribs/{view}"] = float(sum(r["missed"] for r in recs))
    out[f"cohort/missed_stumps/{view}"] = float(sum(r["missed"] and r["truth"]["stump"] for r in recs))
    out[f"bayes_f1/stump/{view}"] = bound["f1"]
    out[f"bayes_auroc/stump/{view}"] = bound["auroc"]
    with_ci(out, f"f1/stump/{view}/oracle_variables", y, oracle.predict(_variables(recs)), groups, config.seed)
    with_ci(out, f"f1/stump/{view}/all_stump", y, np.ones_like(y), groups, config.seed)
    for features in c.feature_sets:
      names = FEATURE_SETS[features]
      x_train = ribs.feature_matrix([r["features"] for r in train], names)
      found = np.array([not r["missed"] for r in recs])
      x = ribs.feature_matrix([r["features"] for r in recs if not r["missed"]], names)
      for kind in c.kinds:
        clf = ribs.fit_stump_classifier(x_train, y_train, kind, seed=config.seed)
        score = np.zeros(len(recs))      # a rib the pipeline did not find is not called a stump
        if found.any():
          score[found] = clf.predict_proba(x)[:, 1]
        m = ribs.binary_metrics(y, score)
        tag = f"{view}/{kind}" + ("" if features == c.primary_features else f"/{features}")
        with_ci(out, f"f1/stump/{tag}", y, (score >= 0.5).astype(int), groups, config.seed)
        out.update({f"{k}/stump/{tag}": v for k, v in m.items() if k != "f1"})
        if kind == c.primary and features == c.primary_features:
          out[f"f1/stump/{view}"], out[f"f1/stump/{view}_ci"] = out[f"f1/stump/{tag}"], out[f"f1/stump/{tag}_ci"]
          out[f"auroc/stump/{view}"] = m["auroc"]
    out[f"gap_to_bayes/stump/{view}"] = out[f"bayes_f1/stump/{view}"] - out[f"f1/stump/{view}"]
  return out


def _variables(recs: list[dict]) -> np.ndarray:
  return np.array([[r["truth"]["params"][v] for v in VARIABLES] for r in recs], np.float64)


def feature_means(recs: list[dict]) -> dict[str, float]:
  """Class means of the headline features over the training ribs, and of the drawn variables."""
  out = {}
  for group, is_stump in (("stump", True), ("full", False)):
    sel = [r for r in recs if r["truth"]["stump"] == is_stump and not r["missed"]]
    for name in FEATURE_SETS["official"] + ribs.LOCAL_FEATURES + ("length_mm",):
      vals = [r["features"][name] for r in sel if np.isfinite(r["features"].get(name, np.nan))]
      out[f"features/{group}/{name}"] = float(np.mean(vals)) if vals else float("nan")
    for v in VARIABLES:
      out[f"drawn/{group}/{v}"] = float(np.mean([r["truth"]["params"][v] for r in sel])) if sel else float("nan")
  return out
