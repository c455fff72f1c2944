"""SSFL-Recon's data: subjects, the fixed acquisition per training subject, the views, and the protocol audit.

The official protocol (midas-tum/SSFL-Recon, ``data_loader/recon_data.py`` lines 86-107): every training
subject has ONE acquired mask, VISTA at R = 2 with a fixed seed (``sd = 10``), and each step's two inputs are
sub-masks of it, ``M_i = VISTA(R_i, seed_i) * VISTA(2)`` with ``R_i`` an integer in ``[2, 16]`` and
``seed_i`` in ``[1, 20]`` (the stage-1 loader, ``feature_vicreg_data.py`` lines 83-129, cuts its views from the
acquired data the same way). Here:

* a training subject holds ``kspace`` *already masked* by its acquisition ``acquired [T, W]``: no
  self-supervised input, loss or SSDU split can read a line outside it, and :class:`MaskAudit` measures it;
* ``gt`` (the fully sampled coil-combined image) is read only by the ``supervised`` baseline's loss;
* synthetic subjects are acquired with VISTA at ``data.acquired_r`` (seed ``data.acquired_seed``); file
  subjects keep their own mask when undersampled (CMRxRecon ``kspace_subNN``, OCMR, an HDF5 ``mask``), and a
  fully sampled training file is acquired like a synthetic subject;
* intensity normalisation per subject: k-space and ``gt`` are divided by the 99th percentile of the
  magnitude of the coil-combined time-averaged acquired k-space (the data the network will see, never the
  fully sampled image); test subjects are normalised the same way from each test mask;
* coil maps: the file's, else ESPIRiT on the time-averaged acquired k-space, whose centre VISTA and
  CMRxRecon's ACS lines sample fully (``jaxmed.mri.espirit_maps``).
"""

from __future__ import annotations

import functools
import glob

import numpy as np

from jaxmed import mri
from jaxmed.io.cine_kspace import load_cine
from jaxmed.io.kspace import KSpaceError
from jaxmed.synth.cine import cine_phantom

VIEW_KEYS = ("m1", "m2", "ssdu_train", "ssdu_loss")


@functools.lru_cache(maxsize=4096)
def vista(w: int, t: int, r: float, seed: int) -> np.ndarray:
  """``[t, w]`` VISTA line mask, cached (the official code also draws from a fixed bank of mask files)."""
  return mri.vista_mask(w, t, r, seed=seed)


def _combine(kspace, maps, mask) -> np.ndarray:
  return np.asarray(mri.sense_adjoint(kspace, maps, mask.astype(np.float32)))


def time_averaged_image(kspace, maps, mask) -> np.ndarray:
  """``|S^H F^-1 (time average of the acquired k-space)|`` ``[H, W]``: what the normalisation reads."""
  avg = mri.time_average(kspace, mask)
  return np.abs(_combine(avg[None], maps, np.ones((1, kspace.shape[-1]), bool))[0])


def intensity_scale(kspace, maps, mask) -> float:
  """The 99th percentile of :func:`time_averaged_image` (1 if it is 0)."""
  s = float(np.percentile(time_averaged_image(kspace, maps, mask), 99))
  return s if s > 0 else 1.0


def espirit_from_acquired(kspace, mask, where: str = "k-space") -> np.ndarray:
  """ESPIRiT maps ``[C, H, W]`` from the time-averaged acquired k-space; the calibration square is the run of
  lines around ``W // 2`` covered in the time average (at most 24)."""
  covered = np.asarray(mask).any(0)
  w = covered.shape[0]
  lo = hi = w // 2
  while lo > 0 and covered[lo - 1]:
    lo -= 1
  while hi < w - 1 and covered[hi + 1]:
    hi += 1
  calib = min(24, hi - lo + 1, kspace.shape[2])
  if calib < 6:
    raise KSpaceError(f"{where}: no coil_maps in the file, and ESPIRiT needs at least 6 calibration lines at the k-space centre in the time average; "
                      f"the acquisition covers {calib}")
  return mri.espirit_maps(mri.time_average(kspace, mask), kspace.shape[2:], calib=calib)


def synthetic_subjects(config, n: int, offset: int) -> list[dict]:
  """``n`` fully sampled phantoms ``{"kspace" [T, C, H, W], "maps", "gt" [T, H, W], "heart", "source"}``."""
  d = config.data
  out = []
  for i in range(n):
    p = cine_phantom(d.cohort_seed * 10_000 + offset + i, size=tuple(d.shape), frames=d.frames, coils=d.coils,
                     noise=d.noise)
    out.append({"kspace": p["kspace"], "maps": p["maps"], "gt": p["image"], "heart": p["heart"],
                "source": f"phantom {offset + i}", "mask": np.ones((d.frames, d.shape[1]), bool)})
  return out


def file_subjects(pattern: str) -> list[dict]:
  """Every slice of the files matching ``pattern`` (CMRxRecon ``.mat``, ISMRMRD ``.mrd``, dynamic ``.h5``), with
  coil maps (file or ESPIRiT) and, for fully sampled slices, ``gt``. All slices must share ``[T, C, H, W]``."""
  files = sorted(glob.glob(pattern))
  if not files:
    raise FileNotFoundError(f"data pattern {pattern!r} matches no file")
  out = []
  for path in files:
    for s in load_cine(path):
      k, m = s["kspace"], s["mask"]
      maps = s.get("coil_maps")
      maps = espirit_from_acquired(k, m, f"{path} slice {s['slice']}") if maps is None else maps
      sub = {"kspace": k, "maps": maps.astype(np.complex64), "mask": m, "source": f"{path} slice {s['slice']}",
             "heart": np.zeros(k.shape[:1] + k.shape[2:], bool)}
      if s["fully_sampled"]:
        sub["gt"] = _combine(k, maps, m).astype(np.complex64)
      if out and k.shape != out[0]["kspace"].shape:
        raise KSpaceError(f"{path} slice {s['slice']}: kspace [T, C, H, W] = {k.shape} differs from "
                          f"{out[0]['source']}: {out[0]['kspace'].shape}; one run needs one shape (split the files)")
      out.append(sub)
  return out


def acquire(subject: dict, acquired: np.ndarray) -> dict:
  """A training subject under its one acquisition ``acquired [T, W]``: the k-space outside it is zeroed here,
  once, and the subject is normalised from the acquired data (:func:`intensity_scale`)."""
  acquired = np.asarray(acquired, bool)
  k = subject["kspace"] * acquired[:, None, None, :]
  scale = intensity_scale(k, subject["maps"], acquired)
  out = {"kspace": (k / scale).astype(np.complex64), "acquired": acquired, "maps": subject["maps"],
         "heart": subject["heart"], "source": subject["source"], "scale": scale}
  if "gt" in subject:
    out["gt"] = (subject["gt"] / scale).astype(np.complex64)
  return out


def training_subjects(config, acquired_r: float) -> list[dict]:
  """The training cohort, each subject under one acquisition (see the module docstring)."""
  d = config.data
  raw = file_subjects(d.train_files) if d.train_files else synthetic_subjects(config, d.num_train, 0)
  out = []
  for s in raw:
    t, w = s["mask"].shape
    acq = s["mask"] if not s["mask"].all() else vista(w, t, float(acquired_r), d.acquired_seed)
    out.append(acquire(s, acq))
  return out


def test_subjects(config) -> list[dict]:
  """Fully sampled test subjects (``gt`` required): the test R masks are drawn at evaluation."""
  d = config.data
  subs = file_subjects(d.test_files) if d.test_files else synthetic_subjects(config, d.num_test, 5_000)
  for s in subs:
    if "gt" not in s:
      raise KSpaceError(f"{s['source']}: test data must be fully sampled (a reference image is needed); this slice "
                        "is undersampled")
  return subs


def draw_views(rng, acquired: np.ndarray, view_r) -> tuple[np.ndarray, np.ndarray, float, float]:
  """Two different sub-masks ``M_i = VISTA(R_i, seed_i) & acquired`` (``R_i`` integer in ``view_r``, seeds
  1-20, as the official loader) and their ``R_i``."""
  t, w = acquired.shape
  lo, hi = int(view_r[0]), int(view_r[1])
  while True:
    r1, r2 = rng.integers(lo, hi + 1, 2)
    s1, s2 = rng.integers(1, 21, 2)
    if (r1, s1) != (r2, s2):
      break
  return vista(w, t, float(r1), int(s1)) & acquired, vista(w, t, float(r2), int(s2)) & acquired, float(r1), float(r2)


def parallel_batch(subjects, config, step: int, batch_size: int, view_r) -> dict[str, np.ndarray]:
  """Per subject: views ``m1``, ``m2`` of its acquisition, SSDU's split of ``m1`` (``ssdu_train``,
  ``ssdu_loss``, rho 0.4), the acquired k-space, and ``gt`` (read only by ``supervised``)."""
  rng = np.random.default_rng([config.seed, step])
  rows = []
  for i in rng.choice(len(subjects), batch_size, replace=len(subjects) < batch_size):
    s = subjects[i]
    m1, m2, _, _ = draw_views(rng, s["acquired"], view_r)
    train_m, loss_m = mri.ssdu_split(mri.expand_line_mask(m1, s["kspace"].shape[2]), rho=0.4,
                                     seed=int(rng.integers(2**31)))
    no_gt = np.full(s["kspace"][:, 0].shape, np.nan, np.complex64)  # undersampled file: any read shows as NaN
    rows.append({"kspace": s["kspace"], "maps": s["maps"], "gt": s.get("gt", no_gt),
                 "m1": m1.astype(np.float32), "m2": m2.astype(np.float32), "ssdu_train": train_m.astype(np.float32),
                 "ssdu_loss": loss_m.astype(np.float32), "subject": np.int32(i)})
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def feature_batch(subjects, config, step: int, view_r) -> dict[str, np.ndarray]:
  """Stage 1: two views per subject cut from its acquisition, ``r1``/``r2`` for InfoNCE's negative rule."""
  f = config.features
  rng = np.random.default_rng([config.seed, 7, step])
  idx = rng.choice(len(subjects), f.batch_size, replace=len(subjects) < f.batch_size)
  views = [draw_views(rng, subjects[i]["acquired"], view_r) for i in idx]
  return {"kspace": np.stack([subjects[i]["kspace"] for i in idx]), "maps": np.stack([subjects[i]["maps"] for i in idx]),
          "m1": np.stack([v[0] for v in views]).astype(np.float32),
          "m2": np.stack([v[1] for v in views]).astype(np.float32),
          "r1": np.asarray([v[2] for v in views], np.float32), "r2": np.asarray([v[3] for v in views], np.float32),
          "subject": idx.astype(np.int32)}


class MaskAudit:
  """Unions, per training subject, every ``(t, ky)`` sample that entered a self-supervised input or loss.

  ``record(batch)`` reads the batch's ``subject`` and mask keys (line ``[T, W]`` or point ``[T, H, W]`` masks)
  and returns the batch, so it wraps a ``batch_at``; :meth:`unseen_fraction_max` is the largest fraction of a
  subject's non-acquired samples that ever entered (the protocol requires 0).
  """

  def __init__(self, subjects):
    self.acquired = [s["acquired"] for s in subjects]
    self.seen = [np.zeros_like(a) for a in self.acquired]

  def record(self, batch):
    for key in VIEW_KEYS:
      if key in batch:
        for i, m in zip(batch["subject"], np.asarray(batch[key]) > 0):
          self.seen[int(i)] |= m.any(axis=1) if m.ndim == 3 else m
    return batch

  def wrap(self, batch_at):
    return lambda step: self.record(batch_at(step))

  def unseen_fraction_max(self) -> float:
    return float(max(((s & ~a).sum() / max((~a).sum(), 1)) for s, a in zip(self.seen, self.acquired)))
