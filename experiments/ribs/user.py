"""The stump-rib pipeline on a user's NIfTI CT: our U-Net or an external rib mask, and U-Net fine-tuning.

* ``--config.data.ct=ct.nii.gz --config.data.vertebrae=vert.nii.gz --config.data.subregions=subreg.nii.gz``
  (SPINEPS/TPTBox masks on the CT's grid): segments the ribs with the U-Net (of ``model_dir``, or trained on
  phantoms first), assigns, measures and describes every rib.
* ``--config.data.ribs=ribs.nii.gz`` as well: the ribs come from that mask (binary, TotalSegmentator, official;
  :mod:`jaxmed.io.rib_masks`) and no U-Net is trained or run.
* ``--config.data.train_cts=a.nii.gz,b.nii.gz --config.data.train_ribs=a_ribs.nii.gz,b_ribs.nii.gz``: fine-tunes
  the U-Net of ``model_dir`` (or a fresh one) on those pairs (:func:`finetune_segmentation`).

Outputs: ``rib_instance.nii.gz`` / ``rib_semantic.nii.gz`` in the CT's own orientation and ``ribs.csv`` (one row per
rib: length, stump call, our and the official features, and the external mask's label under the rib).
"""

from __future__ import annotations

import csv
import os

import nibabel as nib
import numpy as np

from jaxmed import ribs
from jaxmed.io import spine_labels as L
from jaxmed.io import axcodes, load_nifti, load_rib_mask, load_spine_ct, reorient, save_nifti
from jaxmed.io.rib_masks import label_name


def split_paths(paths: str) -> list[str]:
  return [p.strip() for p in str(paths).split(",") if p.strip()]


def load_training_pairs(config) -> list[dict]:
  """The user's CT + rib-mask pairs, reoriented to ``P, I, R`` and resampled to the model's spacing."""
  from scipy import ndimage
  from jaxmed.io import NiftiError
  cts, masks = split_paths(config.data.train_cts), split_paths(config.data.train_ribs)
  if len(cts) != len(masks) or not cts:
    raise NiftiError(f"data.train_cts lists {len(cts)} CTs and data.train_ribs {len(masks)} rib masks; expected "
                     "the same number (at least one), comma-separated, in the same order")
  pairs = []
  for ct_path, rib_path in zip(cts, masks):
    ct, affine, _ = load_nifti(ct_path, ndim=3)
    mask, _, _ = load_rib_mask(rib_path, ct.shape, affine, scheme=config.data.rib_labels, ct_path=ct_path)
    ct, new_affine = reorient(ct.astype(np.float32), affine, ("P", "I", "R"))
    mask, _ = reorient(mask.astype(np.uint8), affine, ("P", "I", "R"))
    zoom = np.sqrt((new_affine[:3, :3] ** 2).sum(0)) / config.data.spacing
    pairs.append({"ct": ndimage.zoom(ct, zoom, order=1).astype(np.float32),
                  "rib_mask": ndimage.zoom(mask, zoom, order=0).astype(bool)})
  return pairs


def segment_user_ct(config, model, params, scan: dict) -> np.ndarray:
  """The U-Net's rib mask of a loaded CT, run at the model's spacing and brought back to the CT's grid."""
  from scipy import ndimage
  zoom = scan["spacing"] / config.data.spacing
  prob = ribs.rib_probability(model, params, ndimage.zoom(scan["ct"], zoom, order=1), tuple(config.train.patch),
                              overlap=config.infer.overlap, batch_size=config.infer.batch_size, progress="segment CT")
  back = ndimage.zoom(prob, np.asarray(scan["ct"].shape) / np.asarray(prob.shape), order=1)
  return back > config.infer.threshold


def analyse_user_ct(config, workdir: str, model=None, params=None) -> dict:
  """A user's CT: ribs from ``data.ribs`` (no U-Net) or the U-Net; assign, measure, describe, write back."""
  from experiments.ribs.train import length_kwargs
  d = config.data
  scan = load_spine_ct(d.ct, d.vertebrae, d.subregions)
  codes = axcodes(scan["source_affine"])
  source, scheme = None, "unet"
  if d.ribs:
    shape = nib.load(d.ct).shape[:3]   # the CT as stored
    mask, source, scheme = load_rib_mask(d.ribs, shape, scan["source_affine"], scheme=d.rib_labels, ct_path=d.ct)
    mask = reorient(mask.astype(np.uint8), scan["source_affine"], ("P", "I", "R"))[0].astype(bool)
    source = reorient(source, scan["source_affine"], ("P", "I", "R"))[0]
    print(f"rib mask {d.ribs}: scheme {scheme}, {int(mask.sum())} voxels; segmentation skipped")
  else:
    mask = segment_user_ct(config, model, params, scan)
  assigned = ribs.assign_ribs(mask, scan["vertebra_instance"], scan["subregions"], scan["spacing"],
                              min_component_mm3=config.infer.min_component_mm3)
  recs = ribs.measure_ribs(assigned["instance"], assigned["semantic"], scan["vertebra_instance"],
                           scan["subregions"], scan["spacing"], **length_kwargs(config))
  for key in ("instance", "semantic"):
    data, aff = reorient(assigned[key], scan["affine"], codes)
    save_nifti(os.path.join(workdir, f"rib_{key}.nii.gz"), data, aff)
  write_user_csv(os.path.join(workdir, "ribs.csv"), recs, assigned, source, scheme)
  print(f"{len(recs)} ribs measured; wrote rib_instance.nii.gz, rib_semantic.nii.gz and ribs.csv to {workdir}")
  return {"num_ribs": float(len(recs)), "num_stumps_by_length": float(sum(bool(r["length"].stump) for r in recs)),
          "rib_mask_scheme": scheme}


def write_user_csv(path: str, recs: list[dict], assigned: dict, source, scheme: str) -> None:
  names = list(ribs.LOCAL_FEATURES) + list(ribs.OFFICIAL_FEATURES)
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["vertebra", "side", "length_mm", "stump_by_length", "at_border", "converged",
                                      "source_label", *names])
    w.writeheader()
    for r in recs:
      label = ""
      if source is not None:
        side = L.RIB_LEFT if r["left"] else L.RIB_RIGHT
        under = source[(assigned["instance"] == L.rib_label(r["vertebra"])) & (assigned["semantic"] == side)]
        under = under[under > 0]
        label = label_name(int(np.bincount(under).argmax()), scheme) if len(under) else ""
      w.writerow({"vertebra": L.VERTEBRA_NAMES.get(r["vertebra"], r["vertebra"]),
                  "side": "left" if r["left"] else "right", "length_mm": round(r["length"].length_mm, 2),
                  "stump_by_length": r["length"].stump, "at_border": r["length"].at_border,
                  "converged": r["length"].success, "source_label": label,
                  **{k: round(r["features"].get(k, float("nan")), 4) for k in names}})
