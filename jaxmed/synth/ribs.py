"""A CT-like thoracolumbar phantom with T11, T12 and L1, their subregions, and ribs as curved tubes.

Everything is in the canonical ``("P", "I", "R")`` orientation of
:mod:`jaxmed.io.spine_labels`: array axis 0 grows towards posterior, axis 1
towards inferior, axis 2 towards the patient's right; positions are in mm
from the centre of voxel ``(0, 0, 0)``.

* Vertebrae (instance ids 18 = T11, 19 = T12, 20 = L1) carry TPTBox subregion
  labels: corpus (50, with its 2 mm outer shell 49), arcus (41: pedicles and
  lamina), spinosus (42), costal processes (43/44), superior (45/46) and
  inferior (47/48) articular processes.
* Ribs of T11 and T12 on both sides are tubes around a known centreline: a
  horizontal arc (radius ``R``) that starts at the costovertebral joint
  heading laterally and slightly posteriorly, bends anteriorly and descends
  with a constant slope; the caps are flat, so the centreline length is the
  rib's length. The T12 (lowest) rib of each side is independently a full
  rib (75-110 mm) or a stump rib (15-35 mm). Its shape is drawn from
  class-conditional Gaussians that overlap (:data:`RIB_DISTRIBUTIONS`,
  :func:`draw_rib`): how far posterior of the corpus centre it articulates
  and the volume of its first centimetre have the means +- SD that Moeller
  et al. (2025) measured; stumps also descend more steeply and head more
  laterally, which the paper reports as directions only (our numbers).
* Anatomical noise (``anatomy_noise``): every vertebra, with its ribs, is
  turned about its corpus centre (axial N(0, 5 deg), sagittal N(0, 2 deg));
  a third of the spines are scoliotic (a lateral curve of 4-12 mm amplitude
  whose tangent tilts the vertebrae in the coronal plane, with coupled axial
  rotation); a tenth of the lowest ribs are partly fused to the costal
  process by a bony bridge.
* HU: air -1000, fat -100, soft tissue 40, cancellous bone 200-250, cortical
  shell 600-700, smooth texture, a half-voxel blur and noise.

:func:`crop_fov` cuts the field of view laterally, so ribs become partially
visible and touch the border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from jaxmed.io import spine_labels as L

VERTEBRAE = (18, 19, 20)          # T11, T12, L1
RIB_VERTEBRAE = (18, 19)          # T11 and T12 carry ribs; T12's are the lowest
EXTENT_MM = (135.0, 100.0, 250.0)  # P, I, R field of view
PITCH_MM = 26.0                    # vertebra + disc height


def _pir_affine(spacing: float, shape) -> np.ndarray:
  """Voxel (P, I, R) -> RAS world mm: P = -A, I = -S, R = R; the centre of the grid at the origin."""
  a = np.zeros((4, 4))
  a[1, 0], a[2, 1], a[0, 2], a[3, 3] = -spacing, -spacing, spacing, 1.0
  a[:3, 3] = -a[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
  return a


def rib_centreline(start: np.ndarray, side: int, length: float, radius_of_curvature: float, beta0_deg: float,
                   slope: float, step: float = 0.25) -> np.ndarray:
  """Points ``[K, 3]`` (P, I, R mm) every ``step`` mm along a rib of ``length`` mm.

  The heading angle ``beta`` goes from the lateral direction towards
  anterior (``beta0 < 0`` starts slightly posterior) and grows by
  ``s / radius_of_curvature``; the rib descends ``slope`` mm per mm of
  horizontal path. ``side``: +1 right, -1 left.
  """
  s = np.arange(0.0, length + 1e-9, step)
  if s[-1] < length:
    s = np.append(s, length)
  beta = np.deg2rad(beta0_deg) + s / radius_of_curvature
  b0 = np.deg2rad(beta0_deg)
  horiz = 1.0 / np.sqrt(1.0 + slope ** 2)          # unit 3D speed: horizontal part + descent
  lat = radius_of_curvature * (np.sin(beta) - np.sin(b0)) * horiz
  post = radius_of_curvature * (np.cos(beta) - np.cos(b0)) * horiz   # -sin(beta) integrated
  inf = s * slope * horiz
  return start + np.stack([post, inf, side * lat], -1)


def polyline_length(points: np.ndarray) -> float:
  return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def visible_part(line: np.ndarray, hi_mm: np.ndarray, lo_mm: np.ndarray | None = None) -> np.ndarray:
  """The centreline ``[K, 3]`` from its start up to where it first leaves the box ``[lo_mm, hi_mm]``."""
  lo_mm = np.zeros(3) if lo_mm is None else lo_mm
  keep = np.all((line >= lo_mm) & (line <= hi_mm), axis=1)
  return line[:max(int(np.argmin(keep)) if not keep.all() else len(keep), 1)]


def _tube(shape, spacing: float, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
  """Boolean tube mask with flat caps and each voxel's distance to the centreline (inf outside the bbox)."""
  lo = np.maximum(np.floor((centre.min(0) - radius - 1) / spacing).astype(int), 0)
  hi = np.minimum(np.ceil((centre.max(0) + radius + 1) / spacing).astype(int) + 1, shape)
  mask = np.zeros(shape, bool)
  dist = np.full(shape, np.inf, np.float32)
  if np.any(hi <= lo):
    return mask, dist
  grid = np.stack(np.meshgrid(*[np.arange(a, b) * spacing for a, b in zip(lo, hi)], indexing="ij"), -1)
  pts = grid.reshape(-1, 3)
  d, k = cKDTree(centre).query(pts)
  inside = d <= radius
  for end, nxt in ((0, 1), (len(centre) - 1, len(centre) - 2)):  # flat caps: nothing beyond the end planes
    tangent = centre[end] - centre[nxt]
    tangent /= np.linalg.norm(tangent)
    inside &= ~((k == end) & ((pts - centre[end]) @ tangent > 1e-6))
  sl = tuple(slice(a, b) for a, b in zip(lo, hi))
  mask[sl] = inside.reshape(grid.shape[:3])
  dist[sl] = d.reshape(grid.shape[:3])
  return mask, dist


def voxelise_tube(centreline: np.ndarray, radius: float, spacing: float, margin_mm: float = 10.0
                  ) -> tuple[np.ndarray, np.ndarray]:
  """A flat-capped tube of ``radius`` mm around ``centreline [K, 3]`` (mm) in its own grid.

  Returns ``(mask, centreline)`` with the centreline moved to that grid's
  mm frame (voxel index x spacing) and ``margin_mm`` of background around.
  """
  line = centreline - centreline.min(0) + margin_mm + radius
  shape = tuple(int(np.ceil(e / spacing)) + 1 for e in line.max(0) + margin_mm + radius)
  return _tube(shape, spacing, line, radius)[0], line


def _box(grids, lo, hi):
  return np.all([(g >= a) & (g <= b) for g, a, b in zip(grids, lo, hi)], axis=0)


def _local(grids, centre, rotation):
  """Voxel-centre coordinates in a vertebra's own frame: ``rotation.T @ (x - centre)`` for each voxel."""
  d = [g - c for g, c in zip(grids, centre)]
  return tuple(sum(rotation[j, k] * d[j] for j in range(3)) for k in range(3))


def _vertebra(grids, centre, scale, labels, inst, vid, rotation=None):
  """Writes one vertebra's subregions (into ``labels``) and id (into ``inst``); ``centre`` = corpus centre.

  ``rotation [3, 3]``: the columns are the vertebra's own P, I, R axes in the scanner's (identity: upright)."""
  p, i, r = _local(grids, centre, np.eye(3) if rotation is None else rotation)
  s = scale
  def put(region, label):
    labels[region & (labels == 0)] = label
    inst[region & (inst == 0)] = vid
  body = ((p / (14 * s)) ** 2 + (r / (17 * s)) ** 2 <= 1) & (np.abs(i) <= 11 * s)
  shell = body & ~(((p / (14 * s - 2)) ** 2 + (r / (17 * s - 2)) ** 2 <= 1) & (np.abs(i) <= 11 * s - 2))
  put(shell, L.CORPUS_BORDER)
  put(body, L.CORPUS)
  for side, (costal, sup, inf_) in ((+1, (L.COSTAL_RIGHT, L.SUP_ARTICULAR_RIGHT, L.INF_ARTICULAR_RIGHT)),
                                    (-1, (L.COSTAL_LEFT, L.SUP_ARTICULAR_LEFT, L.INF_ARTICULAR_LEFT))):
    u = side * r
    put(_box((p, i, u), (20 * s, -15 * s, 8 * s), (29 * s, -9 * s, 14 * s)), sup)
    put(_box((p, i, u), (23 * s, 4 * s, 6 * s), (31 * s, 11 * s, 12 * s)), inf_)
    put(_box((p, i, u), (18 * s, -10 * s, 14 * s), (27 * s, -2 * s, 30 * s)), costal)
    put(_box((p, i, u), (11 * s, -10 * s, 7 * s), (24 * s, 2 * s, 13.9 * s)), L.ARCUS)     # pedicle
  put(_box((p, i, r), (24 * s, -10 * s, -13.9 * s), (32 * s, 4 * s, 13.9 * s)), L.ARCUS)   # lamina
  slant = i - 0.4 * (p - 32 * s)
  put(_box((p, slant, r), (32 * s, -6 * s, -3 * s), (52 * s, 8 * s, 3 * s)), L.SPINOSUS)


# Class-conditional (mean, SD) of the lowest rib's shape. articulation_mm (how far posterior of the corpus centre
# the rib starts) and thickness_mm3 (the volume of its first 10 mm) are the paper's reported values (Moeller et
# al., 2025: -19.2 +- 3.8 vs -13.8 +- 2.5 and 260.6 +- 103.4 vs 563.6 +- 127.1); the paper gives the first
# centimetres' descent (slope, mm down per mm of horizontal path) and heading (beta0_deg, 0 = lateral, negative =
# towards posterior) only as "more downwards and sideways" for stumps, so those two are our choice.
RIB_DISTRIBUTIONS = {
    "articulation_mm": {"stump": (19.2, 3.8), "full": (13.8, 2.5)},
    "thickness_mm3": {"stump": (260.6, 103.4), "full": (563.6, 127.1)},
    "slope": {"stump": (0.42, 0.12), "full": (0.34, 0.10)},
    "beta0_deg": {"stump": (-8.0, 8.0), "full": (-14.0, 8.0)},
}
# the draws are clipped here (rarely: < 3% of stumps reach the thickness floor, r = 1.4 mm)
RIB_LIMITS = {"articulation_mm": (6.0, 30.0), "thickness_mm3": (60.0, 1200.0), "slope": (0.02, 0.9),
              "beta0_deg": (-40.0, 25.0)}
LOWEST_RIB_LENGTH_MM = {"stump": (15.0, 35.0), "full": (75.0, 110.0)}


def draw_rib(rng: np.random.Generator, stump: bool) -> dict:
  """The shape parameters of one lowest rib: each of :data:`RIB_DISTRIBUTIONS` from its class's Gaussian
  (clipped to :data:`RIB_LIMITS`), ``radius`` = sqrt(thickness / (10 mm x pi)), a class-free curvature radius
  (65-120 mm) and the class's length range."""
  cls = "stump" if stump else "full"
  out = {}
  for name, by_class in RIB_DISTRIBUTIONS.items():
    mean, sd = by_class[cls]
    out[name] = float(np.clip(rng.normal(mean, sd), *RIB_LIMITS[name]))
  out["radius"] = float(np.sqrt(out["thickness_mm3"] / (10.0 * np.pi)))
  out["curvature"] = float(rng.uniform(65.0, 120.0))
  out["length"] = float(rng.uniform(*LOWEST_RIB_LENGTH_MM[cls]))
  out["beta0"] = out["beta0_deg"]
  return out


def bayes_f1(stump_probability: float = 0.5, names=tuple(RIB_DISTRIBUTIONS), num_samples: int = 400_000,
             seed: int = 0) -> dict[str, float]:
  """The best F1 (stump = positive) any classifier of the generating variables ``names`` can reach.

  Monte Carlo over the generative model: the Bayes posterior of each draw from the class Gaussians (the latent
  values before clipping, so this bounds a classifier of the clipped values too), thresholded at the F1-best
  level; also the Bayes AUROC and the F1 at posterior 0.5.
  """
  from scipy.stats import norm
  from sklearn.metrics import roc_auc_score
  rng = np.random.default_rng(seed)
  y = rng.uniform(size=num_samples) < stump_probability
  llr = np.zeros(num_samples)
  for name in names:
    (ms, ss), (mf, sf) = RIB_DISTRIBUTIONS[name]["stump"], RIB_DISTRIBUTIONS[name]["full"]
    x = np.where(y, rng.normal(ms, ss, num_samples), rng.normal(mf, sf, num_samples))
    llr += norm.logpdf(x, ms, ss) - norm.logpdf(x, mf, sf)
  logit = llr + np.log(stump_probability / (1 - stump_probability))
  order = np.argsort(-logit)
  tp = np.cumsum(y[order])
  f1 = 2 * tp / (np.arange(1, num_samples + 1) + y.sum())
  pred = logit > 0
  f1_half = 2 * (pred & y).sum() / (pred.sum() + y.sum())
  return {"f1": float(f1.max()), "f1_at_half": float(f1_half), "auroc": float(roc_auc_score(y, logit))}


def _scoliosis(rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
  """Per-vertebra lateral offsets (mm) and coronal tilts (rad) of a random lateral curve (zero if straight)."""
  k = np.arange(len(VERTEBRAE), dtype=np.float64)
  if rng.uniform() >= 1 / 3:
    return np.zeros_like(k), np.zeros_like(k)
  amp, omega, phase = rng.uniform(4.0, 12.0), rng.uniform(0.4, 0.8), rng.uniform(0, 2 * np.pi)
  offset = amp * np.sin(omega * k + phase)
  tilt = np.arctan(amp * omega * np.cos(omega * k + phase) / (PITCH_MM * scale))
  return offset, tilt


def _rotation(axial: float, sagittal: float, coronal: float) -> np.ndarray:
  """Columns = a vertebra's P, I, R axes in the scanner's: turned about I (axial), R (sagittal), P (coronal)."""
  def about(axis, a):
    c, s_ = np.cos(a), np.sin(a)
    m = np.eye(3)
    j, k = [x for x in range(3) if x != axis]
    m[j, j], m[j, k], m[k, j], m[k, k] = c, -s_, s_, c
    return m
  return about(1, axial) @ about(2, sagittal) @ about(0, coronal)


def _bridge(shape, spacing, a: np.ndarray, b: np.ndarray, radius: float = 2.0) -> np.ndarray:
  line = a + np.linspace(0.0, 1.0, 40)[:, None] * (b - a)
  return _tube(shape, spacing, line, radius)[0]


def thoracolumbar_phantom(spacing: float = 1.5, seed: int = 0, *, stump_probability: float = 0.5,
                          stump: dict | None = None, noise_hu: float = 20.0, fov_jitter_mm: float = 6.0,
                          anatomy_noise: bool = True, with_ct: bool = True) -> dict:
  """One seeded CT phantom.

  Args:
    spacing: isotropic voxel size (mm).
    seed: the generator seed (shapes, variants, texture, noise, FOV).
    stump_probability: chance that each lowest (T12) rib is a stump.
    stump: ``{"left": bool, "right": bool}`` forces the T12 variants.
    noise_hu: white noise sigma (HU).
    fov_jitter_mm: the FOV's per-axis random shift.
    anatomy_noise: vertebra rotation, scoliosis and partial fusion (module
      docstring); ``False`` gives upright, straight spines.
    with_ct: synthesise the HU image (``False``: masks only, faster; ``ct``
      is then ``None``).

  Returns:
    ``ct [P, I, R]`` float32 HU, ``rib_mask`` bool, ``rib_instance`` int32
    (vertebra id + 32 on rib voxels), ``rib_semantic`` int32 (63 left,
    64 right), ``vertebra_instance`` int32, ``subregions`` int32 (41-50),
    ``spacing`` (3,), ``affine`` (PIR -> RAS), ``rotations`` (vertebra ->
    ``[3, 3]``, columns its own P, I, R axes) and ``ribs``: one dict per rib
    with ``vertebra``, ``left``, ``stump``, ``length_mm``, ``radius_mm``,
    ``centreline [K, 3]`` (mm, voxel-index frame times spacing),
    ``start_mm``, ``params`` (:func:`draw_rib`'s shape parameters),
    ``fused``, the vertebra ``scale``, and ``visible_centreline`` /
    ``visible_length_mm`` / ``cut`` (the part inside the volume: a turned
    rib's tip may leave it).
  """
  rng = np.random.default_rng(seed)
  shift = rng.uniform(-fov_jitter_mm, fov_jitter_mm, 3)
  shape = tuple(int(round(e / spacing)) for e in EXTENT_MM)
  grids = np.meshgrid(*[np.arange(n) * spacing for n in shape], indexing="ij")
  scale = rng.uniform(0.92, 1.08)
  mid_r = EXTENT_MM[2] / 2 + shift[2]
  corpus_p = 95.0 + shift[0]
  labels = np.zeros(shape, np.int32)
  inst = np.zeros(shape, np.int32)
  centres, rotations = {}, {}
  noise = np.random.default_rng([seed, 1])   # its own stream: the shapes of a seed do not depend on the flag
  offset, tilt = _scoliosis(noise, scale)
  axial_coupling = noise.uniform(0.5, 1.5)
  for k, vid in enumerate(VERTEBRAE):
    centres[vid] = np.array([corpus_p, 22.0 + shift[1] + k * PITCH_MM * scale, mid_r])
    angles = (np.deg2rad(noise.normal(0, 5.0)) + axial_coupling * tilt[k], np.deg2rad(noise.normal(0, 2.0)),
              tilt[k])
    if anatomy_noise:
      centres[vid][2] += offset[k]
    rotations[vid] = _rotation(*angles) if anatomy_noise else np.eye(3)
    _vertebra(grids, centres[vid], scale, labels, inst, vid, rotations[vid])

  ribs, rib_mask = [], np.zeros(shape, bool)
  rib_inst = np.zeros(shape, np.int32)
  rib_sem = np.zeros(shape, np.int32)
  rib_dist = np.full(shape, np.inf, np.float32)
  # shapes first, lowest ribs first, so that T11's descent can be bounded by its side's T12 rib: parallel ribs a
  # vertebra apart never touch (real ribs do not; a steeper T11 rib crossed a flat T12 one)
  params, stumps = {}, {}
  for vid in RIB_VERTEBRAE[::-1]:
    for left in (True, False):
      lowest = vid == RIB_VERTEBRAE[-1]
      stumps[vid, left] = bool(lowest and (stump[("left" if left else "right")] if stump is not None
                                           else rng.uniform() < stump_probability))
      params[vid, left] = prm = draw_rib(rng, stumps[vid, left])
      if not lowest:
        prm["length"] = rng.uniform(110, 135)
        prm["slope"] = min(prm["slope"], params[RIB_VERTEBRAE[-1], left]["slope"])
  for vid in RIB_VERTEBRAE:
    for left in (True, False):
      side = -1 if left else +1
      lowest = vid == RIB_VERTEBRAE[-1]
      is_stump, prm = stumps[vid, left], params[vid, left]
      c, rot = centres[vid], rotations[vid]
      start = np.array([c[0] + prm["articulation_mm"], c[1] - 6 * scale, c[2] + side * 20 * scale])
      line = rib_centreline(start, side, prm["length"], prm["curvature"], prm["beta0"], prm["slope"])
      line, start = c + (line - c) @ rot.T, c + rot @ (start - c)
      tube, dist = _tube(shape, spacing, line, prm["radius"])
      rib_mask |= tube
      rib_inst[tube] = L.rib_label(vid)
      rib_sem[tube] = L.RIB_LEFT if left else L.RIB_RIGHT
      rib_dist = np.minimum(rib_dist, np.where(tube, dist / prm["radius"], np.inf))
      fused = bool(anatomy_noise and lowest and noise.uniform() < 0.1)
      if fused:   # a bony bridge from 5 mm along the rib to the costal process, labelled as the process
        costal = c + rot @ (np.array([22.5, -6.0, side * 22.0]) * scale)
        bridge = _bridge(shape, spacing, line[min(20, len(line) - 1)], costal) & ~rib_mask
        costal_label = L.side_labels(left)["costal"]
        labels[bridge & (labels == 0)] = costal_label
        inst[bridge & (inst == 0)] = vid
      seen = visible_part(line, (np.asarray(shape) - 1) * spacing)   # a turned rib's tip may leave the volume
      ribs.append({"vertebra": vid, "left": left, "stump": is_stump, "length_mm": polyline_length(line),
                   "radius_mm": prm["radius"], "centreline": line, "start_mm": start, "params": prm,
                   "scale": scale, "fused": fused, "visible_centreline": seen,
                   "visible_length_mm": polyline_length(seen), "cut": len(seen) < len(line)})
  labels[rib_mask] = 0
  inst[rib_mask] = 0
  out = {"ct": None, "rib_mask": rib_mask, "rib_instance": rib_inst, "rib_semantic": rib_sem,
         "vertebra_instance": inst, "subregions": labels, "spacing": np.full(3, spacing),
         "affine": _pir_affine(spacing, shape), "ribs": ribs, "rotations": rotations}
  if not with_ct:
    return out

  # ---- intensities (HU) ----
  p, i, r = grids
  body = ((p - corpus_p + 15) / 80.0) ** 2 + ((r - mid_r) / 120.0) ** 2
  ct = np.where(body <= 1.0, 40.0, -1000.0)
  ct = np.where((body > 0.78) & (body <= 1.0), -100.0, ct)                       # subcutaneous fat
  texture = ndimage.gaussian_filter(rng.normal(size=shape), 3.0 / spacing)
  ct = ct + 25.0 * texture / (texture.std() + 1e-8) * (body <= 1.0)
  bone = labels > 0
  cortical = bone & ~ndimage.binary_erosion(bone, iterations=max(1, int(round(1.5 / spacing))))
  ct = np.where(bone, 220.0 + 40.0 * texture, ct)
  ct = np.where(cortical, 600.0, ct)
  ct = np.where(rib_mask, np.where(rib_dist > 1.0 - 1.0 / 4.0, 700.0, 250.0 + 40 * texture), ct)
  ct = ndimage.gaussian_filter(ct, 0.5)
  ct = ct + rng.normal(0.0, noise_hu, shape)
  out["ct"] = ct.astype(np.float32)
  return out


def crop_fov(phantom: dict, lateral_mm: float, *, side: str = "both") -> dict:
  """The phantom with the field of view cut ``lateral_mm`` from the spine's midline (axis 2).

  ``side``: ``"left"``, ``"right"`` or ``"both"`` borders move in. Ribs
  crossing the new border become partially visible and touch it; each rib
  dict gains ``visible_length_mm`` (its centreline inside the new FOV) and
  ``cut`` (whether the border crosses it). The affine keeps world positions.
  """
  sp = float(phantom["spacing"][2])
  corpus = np.isin(phantom["subregions"], (L.CORPUS, L.CORPUS_BORDER))
  mid = np.argwhere(corpus)[:, 2].mean()
  n = phantom["rib_mask"].shape[2]
  lo = max(0, int(round(mid - lateral_mm / sp))) if side in ("left", "both") else 0
  hi = min(n, int(round(mid + lateral_mm / sp)) + 1) if side in ("right", "both") else n
  out = {k: (v[:, :, lo:hi] if isinstance(v, np.ndarray) and v.ndim == 3 else v) for k, v in phantom.items()}
  out["affine"] = phantom["affine"].copy()
  out["affine"][:3, 3] = phantom["affine"][:3, :3] @ np.array([0, 0, lo]) + phantom["affine"][:3, 3]
  ribs = []
  for rib in phantom["ribs"]:
    line = rib["centreline"] - np.array([0.0, 0.0, lo * sp])
    visible = visible_part(line, (np.asarray(out["rib_mask"].shape) - 1) * sp)
    ribs.append({**rib, "centreline": line, "start_mm": rib["start_mm"] - np.array([0.0, 0.0, lo * sp]),
                 "visible_centreline": visible, "visible_length_mm": polyline_length(visible),
                 "cut": len(visible) < len(line)})
  out["ribs"] = ribs
  return out
