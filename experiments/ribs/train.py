"""Stump ribs: train rib segmentation, segment held-out CTs, assign, measure, extract features, classify.

1. Data: seeded thoracolumbar CT phantoms (``jaxmed.synth.ribs``) in the
   ``P, I, R`` orientation: training CTs for the U-Net (seeds 100+), held-out
   CTs (5000+), and a classifier cohort (:mod:`experiments.ribs.cohort`:
   20000+ for training, 30000+ for testing). Seeds never overlap.
2. Segmentation: a 3D U-Net (``jaxmed.nn.UNet3D``, instance norm, leaky
   ReLU, deep supervision) on foreground-oversampled patches, Dice + CE,
   AdamW with warmup and cosine decay; checkpoints in
   ``<workdir>/segmentation`` (a rerun resumes).
3. Each held-out CT is segmented by Gaussian-weighted sliding windows (Dice,
   surface Dice); the mask is assigned to vertebra sides by dominance and
   every rib is measured (iterative centreline; length error and the paper's
   success criterion, :mod:`experiments.ribs.length_eval`) and described (our
   and the official features in the vertebra frame). The length algorithm is
   also checked on analytic arcs.
4. The classifier cohort: logistic, gradient boosting and MLP on local
   features, full and partial view, >= 200 test ribs per view, against the
   Bayes-optimal F1 of the generating distributions, with cluster-bootstrap
   CIs; the same classifiers on the segmented CTs' lowest ribs.
5. Outputs: ``results.json``, NIfTI CT and rib instance labels of the first
   held-out CT (open in ITK-SNAP / 3D Slicer), ``ribs.csv`` (one row per
   measured rib), ``montage.png`` (projections with rib paths) and
   ``features.png`` (feature distributions, stump vs full).

A user's CT (``data.ct``), an external rib mask (``data.ribs``) and fine-tuning
on the user's pairs (``data.train_cts``): :mod:`experiments.ribs.user`.
"""

from __future__ import annotations

import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.ribs import cohort, length_eval, user
from jaxmed import core, ribs
from jaxmed.io.nifti import save_nifti
from jaxmed.nn import UNet3D
from jaxmed.synth import ribs as phantoms

LOWEST = phantoms.RIB_VERTEBRAE[-1]   # T12: the lowest rib of the phantoms
SHOWN = ("official/corpus/start_to_com_post", "official/thickness/volume_first_cm_mm3", "first_cm/inf",
         "first_cm/lat", "length_mm")


# ---- 1. data ----

def make_ct(config, seed: int) -> dict:
  d = config.data
  return phantoms.thoracolumbar_phantom(d.spacing, seed=seed, stump_probability=d.stump_probability,
                                        noise_hu=d.noise_hu)


def partial_view(config, ph: dict, seed: int) -> dict:
  lo, hi = config.data.partial_lateral_mm
  return phantoms.crop_fov(ph, float(np.random.default_rng(seed).uniform(lo, hi)))


# ---- 2. segmentation ----

def build_model(config) -> UNet3D:
  return UNet3D(num_classes=2, widths=tuple(config.model.widths), deep_supervision=config.model.deep_supervision)


def train_segmentation(config, workdir: str, train_cts: list[dict], mesh, *, init_from: str = "",
                       steps: int | None = None):
  """Trains (or resumes) the U-Net in ``<workdir>/segmentation``; ``init_from``: a workdir whose ``segmentation``
  checkpoint initialises the weights (fine-tuning; the optimiser starts fresh)."""
  t = config.train
  steps = t.steps if steps is None else steps
  model = build_model(config)
  patch = tuple(t.patch)
  source = ribs.PatchSource([c["ct"] for c in train_cts], [c["rib_mask"] for c in train_cts], patch,
                            length=steps * t.batch_size, seed=config.seed,
                            foreground_fraction=t.foreground_fraction)
  ds = core.step_batches(source, batch_size=t.batch_size, seed=config.seed, shuffle=False)
  warmup = min(t.warmup, max(1, steps // 5))
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, t.lr, warmup, steps), weight_decay=t.weight_decay)
  init = lambda r: model.init(r, jnp.zeros((1, *patch, 1)))  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(config.seed), mesh)
  if init_from:
    manager = core.checkpoint_manager(os.path.join(init_from, "segmentation"), save_every=1)
    loaded, at = core.restore_latest(manager, state)
    if at is None:
      raise FileNotFoundError(f"model_dir {init_from}: no U-Net checkpoint under {init_from}/segmentation/checkpoints;"
                              " expected the workdir of a previous ribs run")
    state = state.replace(params=loaded.params, opt_state=tx.init(loaded.params))

  def loss_fn(params, batch, rng):
    out = model.apply(params, batch["image"])
    loss, metrics = ribs.deep_supervision_loss(out, batch["label"])
    return loss, metrics

  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, lambda s: ds[s], mesh=mesh, run_dir=os.path.join(workdir, "segmentation"),
                          steps=steps, save_every=t.save_every, keep=t.keep, log_every=t.log_every,
                          desc="train rib U-Net")
  return model, state.params


def segment(config, model, params, ct: np.ndarray, desc: str | None = None) -> np.ndarray:
  prob = ribs.rib_probability(model, params, ct, tuple(config.train.patch), overlap=config.infer.overlap,
                              batch_size=config.infer.batch_size, progress=desc)
  return prob > config.infer.threshold


# ---- 3. assign, measure, describe ----

def length_kwargs(config) -> dict:
  g = config.length
  return {"stump_threshold_mm": g.stump_threshold_mm, "shell_radius_mm": g.shell_radius_mm,
          "max_iterations": g.max_iterations, "resolution_mm": g.resolution_mm}


def analyse(config, mask: np.ndarray, ph: dict, vertebrae=None, min_component_mm3: float | None = None
            ) -> tuple[dict, list[dict]]:
  """Assignment and one record per rib, matched to the phantom's rib of the same vertebra side.

  ``min_component_mm3``: default ``config.infer.min_component_mm3`` (for U-Net masks); 0 keeps every component.
  """
  floor = config.infer.min_component_mm3 if min_component_mm3 is None else min_component_mm3
  assigned = ribs.assign_ribs(mask, ph["vertebra_instance"], ph["subregions"], ph["spacing"],
                              min_component_mm3=floor)
  records = ribs.measure_ribs(assigned["instance"], assigned["semantic"], ph["vertebra_instance"],
                              ph["subregions"], ph["spacing"], vertebrae=vertebrae, **length_kwargs(config))
  truth = {(r["vertebra"], r["left"]): r for r in ph["ribs"]}
  for rec in records:
    rec["truth"] = truth.get((rec["vertebra"], rec["left"]))
  return assigned, records


# ---- 4. held-out CTs: segmentation, length, features ----

def segmented_cts(config, workdir: str, model, params) -> tuple[dict, dict]:
  """Segments the held-out CTs (full and cut field of view); Dice, surface Dice, length, the lowest ribs."""
  from jaxmed.registration.surface import surface_dice
  d = config.data
  dices, sdices, entries, rows, first, num_true, false_pos, missed = [], [], [], [], None, 0, 0, 0
  views = {"full_view": [], "partial_view": []}
  for i in range(d.num_test):
    ph = make_ct(config, 5000 + i)
    mask = segment(config, model, params, ph["ct"], desc=f"segment test CT {i}")
    dices.append(ribs.dice_score(mask, ph["rib_mask"]))
    sdices.append(float(surface_dice(mask[None], ph["rib_mask"][None], config.infer.surface_tolerance_mm,
                                     spacing=ph["spacing"])[0]))
    assigned, recs = analyse(config, mask, ph)
    cut = partial_view(config, ph, 7000 + i)
    cut_mask = segment(config, model, params, cut["ct"], desc=f"segment cut CT {i}")
    _, cut_recs = analyse(config, cut_mask, cut, vertebrae=(LOWEST,))
    false_pos += sum(r["truth"] is None for r in recs)
    recs = [{**r, "phantom": i} for r in recs if r["truth"] is not None]
    missed += len(ph["ribs"]) - len(recs)
    entries += [length_eval.record_entry(config, r, d.spacing) for r in recs]
    views["full_view"] += [r for r in recs if r["vertebra"] == LOWEST]
    views["partial_view"] += [{**r, "phantom": i} for r in cut_recs if r["truth"] is not None]
    rows += [{"ct": i, "view": "full", "rec": r} for r in recs] + [{"ct": i, "view": "partial", "rec": r}
                                                                    for r in cut_recs if r["truth"] is not None]
    if i == 0:
      first = {"ph": ph, "mask": mask, "recs": recs}
      write_nifti_outputs(workdir, ph, assigned)
    num_true += len(ph["ribs"])
  results = {"dice/rib": float(np.mean(dices)), "dice/rib/min": float(np.min(dices)),
             "surface_dice/rib": float(np.mean(sdices)), "surface_dice/rib/min": float(np.min(sdices)),
             "assign/false_positive_ribs": float(false_pos), "assign/missed_ribs": float(missed)}
  results.update(length_eval.length_metrics("length/", entries, num_true))
  write_csv(os.path.join(workdir, "ribs.csv"), rows, config)
  plot_montage(first, os.path.join(workdir, "montage.png"))
  return results, views


def length_rule(views: dict[str, list[dict]], prefix: str) -> dict[str, float]:
  """The paper's length rule (<= 38 mm; a short rib at the border is not measurable and counts as full)."""
  out = {}
  for view, recs in views.items():
    if not recs:
      continue
    y = np.array([r["truth"]["stump"] for r in recs], int)
    call = np.array([bool(r["length"].stump) for r in recs], float)
    out.update({f"{k}/stump/{view}/{prefix}length_rule": v for k, v in ribs.binary_metrics(y, call).items()})
    out[f"not_measurable/{view}/{prefix}length_rule"] = float(np.mean([r["length"].stump is None for r in recs]))
  return out


def segmented_classifier(config, train: list[dict], views: dict[str, list[dict]]) -> dict[str, float]:
  """The primary classifier (cohort-trained) on the segmented CTs' lowest ribs (few ribs: no CI)."""
  c = config.classifier
  names = cohort.FEATURE_SETS[c.primary_features]
  y_train = np.array([r["truth"]["stump"] for r in train], int)
  clf = ribs.fit_stump_classifier(ribs.feature_matrix([r["features"] for r in train], names), y_train, c.primary,
                                  seed=config.seed)
  out = {}
  for view, recs in views.items():
    out[f"num_ribs/segmented/{view}"] = float(len(recs))
    if not recs:
      continue
    y = np.array([r["truth"]["stump"] for r in recs], int)
    score = clf.predict_proba(ribs.feature_matrix([r["features"] for r in recs], names))[:, 1]
    out.update({f"{k}/stump/segmented/{view}": v for k, v in ribs.binary_metrics(y, score).items()})
  return out


# ---- the run ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  d = config.data
  if d.ribs:   # an external rib mask: no U-Net at all
    if not d.ct:
      raise ValueError("data.ribs needs data.ct, data.vertebrae and data.subregions (the mask's CT and spine masks)")
    return core.write_results(workdir, user.analyse_user_ct(config, workdir))
  mesh = core.make_mesh(config.mesh)
  if d.train_cts:   # fine-tune on the user's CT + rib-mask pairs
    model, params = train_segmentation(config, workdir, user.load_training_pairs(config), mesh,
                                       init_from=config.model_dir, steps=config.train.finetune_steps)
    if not d.ct:
      return core.write_results(workdir, {"finetune/steps": float(config.train.finetune_steps),
                                          "finetune/num_pairs": float(len(user.split_paths(d.train_cts)))})
  else:
    train_cts = [make_ct(config, 100 + i) for i in range(d.num_train)]
    model, params = train_segmentation(config, config.model_dir or workdir, train_cts, mesh)
    del train_cts
  if d.ct:
    return core.write_results(workdir, user.analyse_user_ct(config, workdir, model, params))

  results, seg_views = segmented_cts(config, workdir, model, params)
  results.update(length_eval.analytic_arcs(config, d.num_arcs, seed=config.seed))
  train, _ = cohort.measure_cohort(config, [20000 + i for i in range(d.num_cohort_train)], partial=False,
                                   desc="cohort: training ribs")   # found ribs only
  full, cut = cohort.measure_cohort(config, [30000 + i for i in range(d.num_cohort_test)], partial=True,
                                    desc="cohort: test ribs")
  views = {"full_view": full, "partial_view": cut}
  results.update(cohort.evaluate_cohort(config, train, views))
  results.update(length_eval.length_metrics("length/cohort_masks/",
                                            [length_eval.record_entry(config, r, d.spacing) for r in full
                                             if not r["missed"]], len(full)))
  results.update(length_rule({v: [r for r in recs if not r["missed"]] for v, recs in views.items()}, ""))
  results.update(length_rule(seg_views, "segmented/"))
  results.update(segmented_classifier(config, train, seg_views))
  results.update(cohort.feature_means(train))
  plot_features(train, os.path.join(workdir, "features.png"))
  return core.write_results(workdir, results)

# ---- 5. outputs ----

def write_nifti_outputs(workdir: str, ph: dict, assigned: dict) -> None:
  """The first held-out CT, its rib instance labels (vertebra + 32) and the vertebra masks, in world space."""
  save_nifti(os.path.join(workdir, "test_0_ct.nii.gz"), ph["ct"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_rib_instances.nii.gz"), assigned["instance"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_rib_semantic.nii.gz"), assigned["semantic"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_vertebrae.nii.gz"), ph["vertebra_instance"], ph["affine"])


def write_csv(path: str, rows: list[dict], config) -> None:
  fields = ["ct", "view", "vertebra", "side", "true_stump", "true_length_mm", "length_mm", "paper_criterion",
            "stump_by_length", "at_border"] + list(SHOWN[:-1])
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for row in rows:
      r = row["rec"]
      w.writerow({"ct": row["ct"], "view": row["view"], "vertebra": r["vertebra"],
                  "side": "left" if r["left"] else "right", "true_stump": r["truth"]["stump"],
                  "true_length_mm": round(r["truth"]["length_mm"], 2), "length_mm": round(r["length"].length_mm, 2),
                  "paper_criterion": (length_eval.record_entry(config, r, config.data.spacing)[2]
                                      if row["view"] == "full" else ""),
                  "stump_by_length": r["length"].stump, "at_border": r["length"].at_border,
                  **{k: round(r["features"][k], 3) for k in SHOWN[:-1]}})


def plot_montage(first: dict, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  ph, sp = first["ph"], first["ph"]["spacing"]
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for ax, axis, (a, b), title in ((axes[0], 1, (0, 2), "axial MIP (P vs R)"),
                                  (axes[1], 0, (1, 2), "coronal MIP (I vs R)")):
    ax.imshow(ph["ct"].max(axis), cmap="gray", vmin=-300, vmax=900, aspect=sp[a] / sp[b])
    ax.contour(first["mask"].max(axis), levels=[0.5], colors="tab:orange", linewidths=0.6)
    for r in first["recs"]:
      p = r["length"].path_mm / sp
      color = "tab:red" if r["length"].stump else "tab:cyan"
      ax.plot(p[:, b], p[:, a], "-o", ms=2, lw=1.2, color=color)
      ax.text(p[-1, b], p[-1, a], f"{r['length'].length_mm:.0f}", color=color, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
  fig.suptitle("segmented ribs (orange) and measured paths (red: <= 38 mm, stump; cyan: full), mm", fontsize=9)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_features(recs: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(SHOWN), figsize=(3 * len(SHOWN), 2.8))
  for ax, name in zip(axes, SHOWN):
    for group, color in ((True, "tab:red"), (False, "tab:blue")):
      vals = [r["features"][name] for r in recs if r["truth"]["stump"] == group]
      ax.hist(vals, bins=12, alpha=0.6, color=color, label="stump" if group else "full")
    ax.set_title(name, fontsize=8)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
