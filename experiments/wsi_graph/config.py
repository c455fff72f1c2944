"""Config for the WSI region-graph experiment.

  python -m experiments.wsi_graph --config=experiments/wsi_graph/config.py:demo --workdir=runs/wsi_graph

Every resolution is in microns per pixel (``wsi.*_mpp``) and every size in
microns or square microns, mapped to pyramid levels per slide, so the same
settings read a 20x and a 40x scan alike.

Presets:
  tiny  - 20 small synthetic slides, one 2-fold CV, a few steps: a CI smoke run.
  demo  - 128 synthetic H&E slides from ~96 patients (1024 px at 0.5 um/px,
          4-level pyramidal TIFF), features at 1 um/px, regions of ~600 um^2;
          patient-grouped 5-fold CV of four models, repeated 3 times.
  paper - point ``data.slide_dir`` at real slides with a ``labels.csv``
          (``slide,stage,time,event`` and optionally ``patient``); features at
          1 um/px, regions of ~20,000 um^2 on an 8 um/px label map, the tissue
          mask at 16 um/px, 1024 px tiles; ``data.slide_mpp`` for files that do
          not record their resolution.
"""

import ml_collections

from jaxmed.core import check_preset


def get_config(preset: str = "demo") -> ml_collections.ConfigDict:
  check_preset(preset)
  c = ml_collections.ConfigDict()
  c.seed = 0
  # slides: synthetic unless slide_dir is set (a synthetic cohort of num_slides at mpp um/px, `levels` pyramid levels)
  c.data = ml_collections.ConfigDict(dict(slide_dir="", num_slides=128, size=1024, mpp=0.5, levels=4,
                                          slide_mpp=0.0))
  # slide -> graphs (jaxmed.pathology.slide_graphs): resolutions in um/px, areas in um^2, lengths in um
  c.wsi = ml_collections.ConfigDict(dict(graph_mpp=1.0, region_mpp=2.0, mask_mpp=4.0, region_um2=600.0,
                                         max_regions=4096, compactness=10.0, patch_um=24.0, min_tissue_um2=2000.0,
                                         min_hole_um2=400.0, tile=512, overlap=32, stain_windows=8))
  c.model = ml_collections.ConfigDict(dict(hidden=64, heads=4, coarsen_rounds=1, threshold=0.9, embed_dim=16))
  c.train = ml_collections.ConfigDict(dict(steps=300, batch_size=16, lr=2e-3, weight_decay=1e-4, cox_weight=1.0,
                                           log_every=50, save_every=300, keep=1))
  # patient-grouped, stage-stratified k-fold cross-validation, repeated with new splits and seeds
  # (`models`: the arms to train; a subset, e.g. for a sensitivity run of the region graph alone)
  c.cv = ml_collections.ConfigDict(dict(folds=5, repeats=3, models=("region_graph", "region_graph_nocoarsen",
                                                                    "patch_graph", "abmil")))
  c.ig = ml_collections.ConfigDict(dict(steps=64, num_slides=4))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  if preset == "tiny":
    c.data.update(dict(num_slides=20, size=384, levels=3))
    c.wsi.update(dict(region_um2=400.0, tile=128))
    c.model.update(dict(hidden=16, heads=2))
    c.train.update(dict(steps=6, batch_size=8, log_every=2, save_every=6))
    c.cv.update(dict(folds=2, repeats=1))
    c.ig.update(dict(steps=16, num_slides=2))
  elif preset == "paper":
    c.data.update(dict(num_slides=0))
    c.wsi.update(dict(graph_mpp=1.0, region_mpp=8.0, mask_mpp=16.0, region_um2=20_000.0, patch_um=128.0,
                      min_tissue_um2=50_000.0, min_hole_um2=10_000.0, tile=1024))
    c.model.update(dict(hidden=128, heads=8, coarsen_rounds=2))
    c.train.update(dict(steps=5000, batch_size=32, save_every=500, keep=3))
  return c
