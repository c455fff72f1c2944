"""Stump ribs: train rib segmentation, segment held-out CTs, assign, measure, extract features, classify.

1. Data: seeded thoracolumbar CT phantoms (``jaxmed.synth.ribs``) in the
   ``P, I, R`` orientation; training CTs for the U-Net, held-out CTs, and
   more phantoms whose lowest ribs (ground-truth masks) train the classifiers.
   Seeds never overlap.
2. Segmentation: a 3D U-Net (``jaxmed.nn.UNet3D``, instance norm, leaky
   ReLU, deep supervision) on foreground-oversampled patches, Dice + CE,
   AdamW with warmup and cosine decay; checkpoints in
   ``<workdir>/segmentation`` (a rerun resumes).
3. Each held-out CT is segmented by Gaussian-weighted sliding windows; the
   mask is assigned to vertebra sides by dominance and every rib is
   measured (iterative centreline) and described (morphology features).
   The same CTs with a laterally cut field of view ("partial view") are
   segmented and measured again.
4. Classifiers (logistic, gradient boosting, MLP) on the local features of
   the lowest ribs; evaluated on the held-out full- and partial-view ribs,
   next to the length rule (<= 38 mm).
5. Outputs: ``results.json``, NIfTI CT and rib instance labels of the first
   held-out CT (open in ITK-SNAP / 3D Slicer), ``ribs.csv`` (one row per
   measured rib), ``montage.png`` (projections with rib paths) and
   ``features.png`` (feature distributions, stump vs full).
"""

from __future__ import annotations

import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core, ribs
from jaxmed.io.nifti import save_nifti
from jaxmed.nn import UNet3D
from jaxmed.synth import ribs as phantoms

LOWEST = phantoms.RIB_VERTEBRAE[-1]   # T12: the lowest rib of the phantoms
SHOWN = ("articulation/corpus/com_post", "thickness/area_mm2", "first_cm/inf", "first_cm/lat", "length_mm")


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


def train_segmentation(config, workdir: str, train_cts: list[dict], mesh):
  t = config.train
  model = build_model(config)
  patch = tuple(t.patch)
  source = ribs.PatchSource([c["ct"] for c in train_cts], [c["rib_mask"] for c in train_cts], patch,
                            length=t.steps * t.batch_size, seed=config.seed,
                            foreground_fraction=t.foreground_fraction)
  ds = core.step_batches(source, batch_size=t.batch_size, seed=config.seed, shuffle=False)
  warmup = min(t.warmup, max(1, t.steps // 5))
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, t.lr, warmup, t.steps), weight_decay=t.weight_decay)
  init = lambda r: model.init(r, jnp.zeros((1, *patch, 1)))  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(config.seed), mesh)

  def loss_fn(params, batch, rng):
    out = model.apply(params, batch["image"])
    loss, metrics = ribs.deep_supervision_loss(out, batch["label"])
    return loss, metrics

  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, lambda s: ds[s], mesh=mesh, run_dir=os.path.join(workdir, "segmentation"),
                          steps=t.steps, save_every=t.save_every, keep=t.keep, log_every=t.log_every,
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


def analyse(config, mask: np.ndarray, ph: dict, vertebrae=None) -> tuple[dict, list[dict]]:
  """Assignment and one record per rib, matched to the phantom's rib of the same vertebra side."""
  assigned = ribs.assign_ribs(mask, ph["vertebra_instance"], ph["subregions"], ph["spacing"],
                              min_component_mm3=config.infer.min_component_mm3)
  records = ribs.measure_ribs(assigned["instance"], assigned["semantic"], ph["vertebra_instance"],
                              ph["subregions"], ph["spacing"], vertebrae=vertebrae, **length_kwargs(config))
  truth = {(r["vertebra"], r["left"]): r for r in ph["ribs"]}
  for rec in records:
    rec["truth"] = truth.get((rec["vertebra"], rec["left"]))
  return assigned, records


def length_success(config, rec: dict) -> bool:
  """Converged, and within ``success_tolerance`` (or ``success_tolerance_mm``) of the true length."""
  true = rec["truth"]["length_mm"]
  tol = max(config.length.success_tolerance * true, config.length.success_tolerance_mm)
  return bool(rec["length"].success and abs(rec["length"].length_mm - true) <= tol)


def classifier_set(config) -> list[dict]:
  """Lowest-rib features of the classifier phantoms, from their ground-truth masks."""
  out = []
  with core.progress_bar(config.data.num_classifier, desc="classifier ribs") as bar:
    for i in range(config.data.num_classifier):
      ph = make_ct(config, 2000 + i)
      _, recs = analyse(config, ph["rib_mask"], ph, vertebrae=(LOWEST,))
      out += [r for r in recs if r["truth"] is not None]
      core.update_progress(bar, 1)
  return out


# ---- 4. classify ----

def classify(config, train_recs: list[dict], views: dict[str, list[dict]]) -> dict[str, float]:
  names = ribs.LOCAL_FEATURES
  x = ribs.feature_matrix([r["features"] for r in train_recs], names)
  y = np.array([r["truth"]["stump"] for r in train_recs], int)
  out = {}
  for kind in config.classifier.kinds:
    clf = ribs.fit_stump_classifier(x, y, kind, seed=config.seed)
    for view, recs in views.items():
      if recs:
        yt = np.array([r["truth"]["stump"] for r in recs], int)
        score = clf.predict_proba(ribs.feature_matrix([r["features"] for r in recs], names))[:, 1]
        m = ribs.binary_metrics(yt, score)
      else:   # no lowest rib was found in this view (e.g. an untrained tiny model): reported, not hidden
        m = dict.fromkeys(("f1", "precision", "recall", "auroc"), float("nan"))
      for k, v in m.items():
        out[f"{k}/stump/{view}/{kind}"] = v
      if kind == config.classifier.primary:
        out.update({f"{k}/stump/{view}": v for k, v in m.items()})
  # the length rule (<= 38 mm is a stump; a short rib at the border is not measurable and counts as full)
  for view, recs in views.items():
    yt = np.array([r["truth"]["stump"] for r in recs], int)
    call = np.array([bool(r["length"].stump) for r in recs], float)
    m = (ribs.binary_metrics(yt, call) if recs else dict.fromkeys(("f1", "precision", "recall", "auroc"), float("nan")))
    out.update({f"{k}/stump/{view}/length_rule": v for k, v in m.items()})
    out[f"not_measurable/{view}/length_rule"] = (float(np.mean([r["length"].stump is None for r in recs]))
                                                 if recs else float("nan"))
  return out


def feature_means(recs: list[dict]) -> dict[str, float]:
  out = {}
  for group, is_stump in (("stump", True), ("full", False)):
    sel = [r["features"] for r in recs if r["truth"]["stump"] == is_stump]
    for name in ribs.LOCAL_FEATURES + ("length_mm",):
      vals = [f[name] for f in sel if np.isfinite(f.get(name, np.nan))]
      out[f"features/{group}/{name}"] = float(np.mean(vals)) if vals else float("nan")
  return out


def analyse_user_ct(config, workdir: str, model, params) -> dict:
  """A user's NIfTI CT + SPINEPS/TPTBox masks: segment (at the model's spacing), assign, measure, write back."""
  from scipy import ndimage
  from jaxmed.io import axcodes, load_spine_ct, reorient

  d = config.data
  scan = load_spine_ct(d.ct, d.vertebrae, d.subregions)
  zoom = scan["spacing"] / d.spacing
  prob = ribs.rib_probability(model, params, ndimage.zoom(scan["ct"], zoom, order=1), tuple(config.train.patch),
                              overlap=config.infer.overlap, batch_size=config.infer.batch_size, progress="segment CT")
  back = ndimage.zoom(prob, np.asarray(scan["ct"].shape) / np.asarray(prob.shape), order=1)
  mask = back > config.infer.threshold
  assigned = ribs.assign_ribs(mask, scan["vertebra_instance"], scan["subregions"], scan["spacing"],
                              min_component_mm3=config.infer.min_component_mm3)
  recs = ribs.measure_ribs(assigned["instance"], assigned["semantic"], scan["vertebra_instance"],
                           scan["subregions"], scan["spacing"], **length_kwargs(config))
  codes = axcodes(scan["source_affine"])
  for key in ("instance", "semantic"):
    data, aff = reorient(assigned[key], scan["affine"], codes)
    save_nifti(os.path.join(workdir, f"rib_{key}.nii.gz"), data, aff)
  with open(os.path.join(workdir, "ribs.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["vertebra", "side", "length_mm", "stump_by_length", "at_border",
                                      *ribs.LOCAL_FEATURES])
    w.writeheader()
    for r in recs:
      w.writerow({"vertebra": r["vertebra"], "side": "left" if r["left"] else "right",
                  "length_mm": round(r["length"].length_mm, 2), "stump_by_length": r["length"].stump,
                  "at_border": r["length"].at_border, **{k: r["features"][k] for k in ribs.LOCAL_FEATURES}})
  print(f"{len(recs)} ribs measured; wrote rib_instance.nii.gz, rib_semantic.nii.gz and ribs.csv to {workdir}")
  return {"num_ribs": float(len(recs)), "num_stumps_by_length": float(sum(bool(r["length"].stump) for r in recs))}


# ---- the run ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  d = config.data

  train_cts = [make_ct(config, 100 + i) for i in range(d.num_train)]
  model, params = train_segmentation(config, config.model_dir or workdir, train_cts, mesh)
  del train_cts
  if d.ct:
    return core.write_results(workdir, analyse_user_ct(config, workdir, model, params))

  dices, full, partial, rows, first, num_true, false_pos, missed = [], [], [], [], None, 0, 0, 0
  for i in range(d.num_test):
    ph = make_ct(config, 5000 + i)
    mask = segment(config, model, params, ph["ct"], desc=f"segment test CT {i}")
    dices.append(ribs.dice_score(mask, ph["rib_mask"]))
    assigned, recs = analyse(config, mask, ph)
    cut = partial_view(config, ph, 7000 + i)
    cut_mask = segment(config, model, params, cut["ct"], desc=f"segment cut CT {i}")
    _, cut_recs = analyse(config, cut_mask, cut, vertebrae=(LOWEST,))
    false_pos += sum(r["truth"] is None for r in recs)
    recs = [r for r in recs if r["truth"] is not None]
    missed += len(ph["ribs"]) - len(recs)
    full += [r for r in recs if r["vertebra"] == LOWEST]
    partial += [r for r in cut_recs if r["truth"] is not None]
    rows += [{"ct": i, "view": "full", "rec": r} for r in recs] + [{"ct": i, "view": "partial", "rec": r}
                                                                    for r in cut_recs if r["truth"] is not None]
    if i == 0:
      first = {"ph": ph, "mask": mask, "recs": recs}
      write_nifti_outputs(workdir, ph, assigned)
    num_true += len(ph["ribs"])

  measured = [r["rec"] for r in rows if r["view"] == "full"]
  results = {"dice/rib": float(np.mean(dices)), "dice/rib/min": float(np.min(dices)),
             "length/success_rate": float(sum(length_success(config, r) for r in measured) / num_true),
             "length/mae_mm": float(np.mean([abs(r["length"].length_mm - r["truth"]["length_mm"])
                                             for r in measured])) if measured else float("nan"),
             "length/num_ribs": float(num_true), "assign/false_positive_ribs": float(false_pos),
             "assign/missed_ribs": float(missed), "num_ribs/full_view": float(len(full)),
             "num_ribs/partial_view": float(len(partial)),
             "num_stumps/full_view": float(sum(r["truth"]["stump"] for r in full))}
  train_recs = classifier_set(config)
  results.update(classify(config, train_recs, {"full_view": full, "partial_view": partial}))
  results.update(feature_means(train_recs))
  write_csv(os.path.join(workdir, "ribs.csv"), rows, config)
  plot_montage(first, os.path.join(workdir, "montage.png"))
  plot_features(train_recs, os.path.join(workdir, "features.png"))
  return core.write_results(workdir, results)


# ---- 5. outputs ----

def write_nifti_outputs(workdir: str, ph: dict, assigned: dict) -> None:
  """The first held-out CT, its rib instance labels (vertebra + 32) and the vertebra masks, in world space."""
  save_nifti(os.path.join(workdir, "test_0_ct.nii.gz"), ph["ct"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_rib_instances.nii.gz"), assigned["instance"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_rib_semantic.nii.gz"), assigned["semantic"], ph["affine"])
  save_nifti(os.path.join(workdir, "test_0_vertebrae.nii.gz"), ph["vertebra_instance"], ph["affine"])


def write_csv(path: str, rows: list[dict], config) -> None:
  fields = ["ct", "view", "vertebra", "side", "true_stump", "true_length_mm", "length_mm", "length_success",
            "stump_by_length", "at_border"] + list(SHOWN[:-1])
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for row in rows:
      r = row["rec"]
      w.writerow({"ct": row["ct"], "view": row["view"], "vertebra": r["vertebra"],
                  "side": "left" if r["left"] else "right", "true_stump": r["truth"]["stump"],
                  "true_length_mm": round(r["truth"]["length_mm"], 2), "length_mm": round(r["length"].length_mm, 2),
                  "length_success": length_success(config, r) if row["view"] == "full" else "",
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
