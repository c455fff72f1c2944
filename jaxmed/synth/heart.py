"""A synthetic cardiac cohort for ViTa: a 3-D beating heart seen as SAX stacks and 3 LAX views over a cycle,
with analytic LV/RV phenotypes and tabular factors causally linked to them and to a disease label.

Heart frame (mm): the LV long axis is ``z`` (base plane at ``z = 0``, apex at
``z = -c``). The LV cavity is a half prolate ellipsoid with radii
``(a, a, c)``; the myocardium is the shell out to ``(a + d, a + d, c + d)``,
whose volume (the mass / 1.05 g/ml) is kept over the cycle, so the wall
thickens as the cavity contracts. The RV cavity is a second half ellipsoid
beside the LV (``x > 0``). Over ``T`` frames the cavity radii follow
``1 - (1 - s_es)(1 - cos(2 pi t / T)) / 2`` (end-diastole at ``t = 0``,
end-systole at ``T / 2``), the long axis shortens by 30% of the radial
change, and ``s_es`` is solved from the subject's ejection fraction; every
volume is therefore closed-form.

Causal links (with noise): age, BMI and sex set the blood pressure and the
ventricle size; blood pressure, sex and an image-only hypertrophy factor
the wall thickness (mass). The disease has tabular-only causes (age, BMI,
blood pressure, diabetes, smoking) and image-only ones (hypertrophy and a
regional wall-motion abnormality), plus label noise, so the image, the table
and their fusion have different ceilings (:func:`oracle_disease_auroc`).
LVEF, LVEDV and LVSV come from the geometry; LVCO also needs the heart rate,
which only the table holds. Labels: 0 background, 1 LV blood pool, 2 LV
myocardium, 3 RV blood pool.
"""

from __future__ import annotations

import functools

import numpy as np

PHENOTYPES = ("LVEDV", "LVESV", "LVSV", "LVEF", "LVCO", "LVM", "RVEDV", "RVESV", "RVSV", "RVEF")
PHENOTYPE_UNITS = {"LVEDV": "ml", "LVESV": "ml", "LVSV": "ml", "LVEF": "%", "LVCO": "l/min", "LVM": "g",
                   "RVEDV": "ml", "RVESV": "ml", "RVSV": "ml", "RVEF": "%"}
NUMERICAL = ("age", "bmi", "sbp", "dbp", "heart_rate")
BINARY = ("sex", "diabetes")
CATEGORICAL = {"smoking": ("never", "former", "current")}
LONG_AXIS_SHARE = 0.3
LAX_ANGLES_DEG = (0.0, 60.0, 120.0)   # 4-chamber-like (through the RV), then two more planes about the axis
WMA_SECTOR_RAD = 2 * np.pi / 3        # the anterior sector a wall-motion abnormality affects


def half_ellipsoid_ml(a: float, b: float, c: float) -> float:
  """Volume (ml) of half an ellipsoid with radii ``a, b, c`` mm: ``2/3 pi a b c / 1000``."""
  return 2.0 / 3.0 * np.pi * a * b * c / 1000.0


def _radial_factor(t, frames, s_es):
  return 1.0 - (1.0 - s_es) * (1.0 - np.cos(2 * np.pi * t / frames)) / 2.0


def _solve_s_es(ef: float) -> float:
  """Radial end-systolic factor ``s`` with ``1 - s^2 (1 - 0.3 (1 - s)) = ef`` (bisection)."""
  lo, hi = 0.2, 1.0
  for _ in range(60):
    mid = (lo + hi) / 2
    if 1 - mid ** 2 * (1 - LONG_AXIS_SHARE * (1 - mid)) > ef:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2


def _wall_for_volume(a: float, c: float, volume_ml: float) -> float:
  """The wall ``d`` with ``half_ellipsoid(a + d, a + d, c + d) - half_ellipsoid(a, a, c) = volume``."""
  target = half_ellipsoid_ml(a, a, c) + volume_ml
  lo, hi = 0.0, 60.0
  for _ in range(60):
    mid = (lo + hi) / 2
    if half_ellipsoid_ml(a + mid, a + mid, c + mid) < target:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2


def lv_volume_ml(a: float, c: float, a_sector: float, sector_rad: float = WMA_SECTOR_RAD) -> float:
  """Half-ellipsoid cavity whose radius is ``a_sector`` in a sector of ``sector_rad`` and ``a`` elsewhere:
  ``c/3 ((2 pi - w) a^2 + w a_sector^2) / 1000`` ml (radii in mm)."""
  return c / 3.0 * ((2 * np.pi - sector_rad) * a ** 2 + sector_rad * a_sector ** 2) / 1000.0


def _sector_factor(s: float, severity: float) -> float:
  """Radial factor inside the abnormal sector: it contracts ``1 - severity`` as much as the rest."""
  return 1.0 - (1.0 - s) * (1.0 - severity)


def draw_subject(rng: np.random.Generator) -> dict:
  """Tabular factors, image-only morphology, disease, geometry and the analytic phenotypes of one subject.

  The table holds :data:`NUMERICAL`, :data:`BINARY` and :data:`CATEGORICAL`.
  Two morphology factors reach only the images: ``hypertrophy`` (a standard
  normal that thickens the wall by 2 mm per unit) and a regional
  wall-motion abnormality (``wma`` in [0, 1]: how much a 120 degree anterior
  sector fails to contract; 0 in 65% of subjects). The disease logit sums a
  tabular part, an image part and logistic noise (label noise):
  ``risk = -1.1 + risk_tab + risk_img + Logistic(0, 0.6)``. LVEF comes from
  the geometry (a global contraction plus the abnormal sector); LVCO needs the
  heart rate, which only the table holds. ``latent`` keeps the generating
  variables for the oracles (:func:`oracle_features`).
  """
  age = rng.uniform(40, 80)
  sex = float(rng.uniform() < 0.5)                      # 1 = male
  bmi = float(np.clip(rng.normal(27, 4), 17, 45))
  sbp = 110 + 0.5 * (age - 40) + 1.0 * (bmi - 25) + 6 * sex + rng.normal(0, 10)
  dbp = 0.6 * sbp + rng.normal(5, 5)
  smoking = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
  hr = float(np.clip(rng.normal(70, 10), 45, 110))
  diabetes = float(rng.uniform() < 1 / (1 + np.exp(-(-2.0 + 0.15 * (bmi - 27) + 0.03 * (age - 60)))))
  hypertrophy = rng.normal()
  wma = float(rng.uniform(0.4, 1.0)) if rng.uniform() < 0.35 else 0.0
  risk_tab = (0.08 * (age - 60) + 0.03 * (sbp - 135) + 0.08 * (bmi - 27) + 1.0 * diabetes + 1.0 * (smoking == 2)
              + 0.5 * (smoking == 1))
  risk_img = 1.0 * hypertrophy + 2.4 * wma
  u = rng.uniform(1e-9, 1 - 1e-9)
  disease = float(-1.1 + risk_tab + risk_img + 0.6 * np.log(u / (1 - u)) > 0)
  a = 24 * (1 + 0.08 * sex) * (1 + 0.01 * (bmi - 27)) + rng.normal(0, 2.0)
  c = 3.4 * a * (1 + rng.normal(0, 0.04))
  wall = 7.0 + 0.02 * (sbp - 125) + 0.8 * sex + 2.0 * hypertrophy + rng.normal(0, 0.3)
  wall = float(np.clip(wall, 3.5, 16.0))
  global_ef = float(np.clip(0.62 - 0.002 * (age - 60) + rng.normal(0, 0.06), 0.3, 0.8))
  s_lv = _solve_s_es(global_ef)
  rv_ef = float(np.clip(0.56 + rng.normal(0, 0.05), 0.25, 0.75))
  rv = np.array([0.95 * a, 0.65 * a, 0.85 * c]) * (1 + rng.normal(0, 0.05))
  geom = {"a": a, "c": c, "wall": wall, "s_lv": s_lv, "s_rv": _solve_s_es(rv_ef), "rv": rv, "wma": wma}
  lv_edv = half_ellipsoid_ml(a, a, c)
  lv_esv = lv_volume_ml(a * s_lv, c * (1 - LONG_AXIS_SHARE * (1 - s_lv)), a * _sector_factor(s_lv, wma))
  lv_ef = 1.0 - lv_esv / lv_edv
  myo = half_ellipsoid_ml(a + wall, a + wall, c + wall) - lv_edv
  rv_edv = half_ellipsoid_ml(*rv)
  pheno = {"LVEDV": lv_edv, "LVESV": lv_esv, "LVSV": lv_edv - lv_esv, "LVEF": 100 * lv_ef,
           "LVCO": (lv_edv - lv_esv) * hr / 1000.0, "LVM": 1.05 * myo, "RVEDV": rv_edv,
           "RVESV": rv_edv * (1 - rv_ef), "RVSV": rv_edv * rv_ef, "RVEF": 100 * rv_ef}
  tab = {"age": age, "bmi": bmi, "sbp": sbp, "dbp": dbp, "heart_rate": hr, "sex": sex, "diabetes": diabetes,
         "smoking": smoking}
  latent = {"hypertrophy": hypertrophy, "wma": wma, "wall": wall, "risk_tab": risk_tab, "risk_img": risk_img}
  return {"tabular": tab, "disease": disease, "geometry": geom, "phenotypes": pheno, "myo_ml": myo,
          "latent": latent}


def oracle_features(subjects: list[dict]) -> dict[str, np.ndarray]:
  """The generating variables each modality sees, for the oracle bounds: ``image`` = wall thickness,
  wall-motion abnormality and the LV volumes and EF; ``tabular`` = the full table (no missing values, smoking
  one-hot); ``joint`` = both. Each ``[N, F]``."""
  img = np.array([[s["latent"]["wall"], s["latent"]["wma"], s["latent"]["wma"] > 0, s["phenotypes"]["LVEDV"],
                   s["phenotypes"]["LVEF"]] for s in subjects], np.float64)
  tab = np.array([[s["tabular"][k] for k in NUMERICAL + BINARY]
                  + [s["tabular"]["smoking"] == 1, s["tabular"]["smoking"] == 2] for s in subjects], np.float64)
  return {"image": img, "tabular": tab, "joint": np.concatenate([img, tab], 1)}


def oracle_disease_auroc(test_subjects: list[dict], *, num_fit: int = 20000, seed: int = 12345) -> dict[str, float]:
  """Disease AUROC on ``test_subjects`` of logistic regressions fitted on ``num_fit`` fresh subjects' generating
  variables (:func:`oracle_features`), per modality: the ceiling each arm can reach."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import roc_auc_score
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  fit, f_fit, f_test = _oracle_split(test_subjects, num_fit, seed)
  y_fit = np.array([s["disease"] for s in fit])
  y_test = np.array([s["disease"] for s in test_subjects])
  out = {}
  for k in ("image", "tabular", "joint"):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(f_fit[k], y_fit)
    out[k] = float(roc_auc_score(y_test, model.predict_proba(f_test[k])[:, 1]))
  return out


def oracle_phenotype_r2(test_subjects: list[dict], names=("LVEF", "LVCO"), *, num_fit: int = 20000,
                        seed: int = 12345) -> dict[str, dict[str, float]]:
  """``{phenotype: {modality: R^2}}`` on ``test_subjects`` of least squares on the same generating variables:
  what a linear read-out of each modality can reach (LVEF is an image variable; LVCO needs the heart rate)."""
  from sklearn.linear_model import LinearRegression
  from sklearn.metrics import r2_score

  fit, f_fit, f_test = _oracle_split(test_subjects, num_fit, seed)
  out = {}
  for name in names:
    y_fit = np.array([s["phenotypes"][name] for s in fit])
    y_test = np.array([s["phenotypes"][name] for s in test_subjects])
    out[name] = {k: float(r2_score(y_test, LinearRegression().fit(f_fit[k], y_fit).predict(f_test[k])))
                 for k in ("image", "tabular", "joint")}
  return out


@functools.lru_cache(maxsize=2)
def _oracle_fit_draw(num_fit: int, seed: int) -> tuple[tuple[dict, ...], dict[str, np.ndarray]]:
  """The fresh subjects both oracles fit on (drawn once per ``(num_fit, seed)``) and their features."""
  rng = np.random.default_rng(seed)
  fit = tuple(draw_subject(rng) for _ in range(num_fit))
  return fit, oracle_features(list(fit))


def _oracle_split(test_subjects, num_fit, seed):
  fit, f_fit = _oracle_fit_draw(num_fit, seed)
  return fit, f_fit, oracle_features(test_subjects)


def labels_at(points: np.ndarray, geom: dict, t: int, frames: int) -> np.ndarray:
  """Labels (0-3) of heart-frame points ``[..., 3]`` mm at frame ``t``.

  The LV cavity radius is ``a s(t)`` except in the anterior sector (centred on
  ``+y``, :data:`WMA_SECTOR_RAD` wide), where it follows the weaker
  contraction :func:`_sector_factor`; in each part the wall thickness
  ``d(t)`` keeps that part's share of the myocardial volume.
  """
  s = _radial_factor(t, frames, geom["s_lv"])
  a, c = geom["a"] * s, geom["c"] * (1 - LONG_AXIS_SHARE * (1 - s))
  shell = (half_ellipsoid_ml(geom["a"] + geom["wall"], geom["a"] + geom["wall"], geom["c"] + geom["wall"])
           - half_ellipsoid_ml(geom["a"], geom["a"], geom["c"]))
  a_sector = geom["a"] * _sector_factor(s, geom.get("wma", 0.0))
  d, d_sector = _wall_for_volume(a, c, shell), _wall_for_volume(a_sector, c, shell)
  x, y, z = points[..., 0], points[..., 1], points[..., 2]
  phi = np.arctan2(y, x)
  in_sector = np.abs(np.angle(np.exp(1j * (phi - np.pi / 2)))) < WMA_SECTOR_RAD / 2
  a_phi, d_phi = np.where(in_sector, a_sector, a), np.where(in_sector, d_sector, d)
  r2 = x ** 2 + y ** 2
  below = z <= 0
  cavity = below & (r2 / a_phi ** 2 + (z / c) ** 2 <= 1)
  outer = below & (r2 / (a_phi + d_phi) ** 2 + (z / (c + d_phi)) ** 2 <= 1)
  sr = _radial_factor(t, frames, geom["s_rv"])
  rx, ry, rz = geom["rv"][0] * sr, geom["rv"][1] * sr, geom["rv"][2] * (1 - LONG_AXIS_SHARE * (1 - sr))
  cx = geom["a"] + geom["wall"] + geom["rv"][0] + 2.0          # beside the end-diastolic LV wall
  rv = below & (((x - cx) / rx) ** 2 + (y / ry) ** 2 + (z / rz) ** 2 <= 1)
  out = np.zeros(points.shape[:-1], np.int32)
  out[rv] = 3
  out[outer] = 2
  out[cavity] = 1
  return out


def _view_points(geom: dict, size: int, num_sax: int, fov_mm: float) -> tuple[np.ndarray, np.ndarray]:
  """Heart-frame points ``[S, size, size, 3]`` of the SAX planes and ``[3, size, size, 3]`` of the LAX planes."""
  u = (np.arange(size) - (size - 1) / 2) * fov_mm / size
  uu, vv = np.meshgrid(u, u, indexing="ij")
  centre_x = 0.5 * (geom["a"] + geom["wall"] + geom["rv"][0])
  zs = np.linspace(-4.0, -0.85 * geom["c"], num_sax)
  sax_pts = np.stack([np.broadcast_to(uu + centre_x, (num_sax, size, size)),
                      np.broadcast_to(vv, (num_sax, size, size)),
                      np.broadcast_to(zs[:, None, None], (num_sax, size, size))], -1)
  lax_pts = []
  span = geom["c"] + 25.0                           # rows: from 10 mm above the base to 15 mm beyond the apex
  z = 10.0 - (uu + fov_mm / 2) / fov_mm * span
  for ang in np.deg2rad(LAX_ANGLES_DEG):
    q = vv + (centre_x if ang == 0 else 0.0)        # columns across the long axis
    lax_pts.append(np.stack([q * np.cos(ang), q * np.sin(ang), z], -1))
  return sax_pts, np.stack(lax_pts)


def render_views(geom: dict, rng: np.random.Generator, *, size: int = 32, frames: int = 10, num_sax: int = 6,
                 fov_mm: float = 130.0, noise: float = 0.03, supersample: int = 2) -> dict:
  """``lax [3, T, H, W]``, ``sax [S, T, H, W]`` images (float32, about [0, 1]) and their labels.

  SAX slices are planes ``z = const`` evenly from just below the base to
  85% of the way to the apex, centred between LV and RV; LAX views are
  planes containing the long axis at :data:`LAX_ANGLES_DEG`. Each pixel's
  intensity averages ``supersample^2`` sub-pixel samples (partial volume, so
  a wall thinner than a pixel still changes the image); labels are those of
  the pixel centres.
  """
  sax_pts, lax_pts = _view_points(geom, size, num_sax, fov_mm)
  seg_sax = np.stack([labels_at(sax_pts, geom, t, frames) for t in range(frames)], 1)
  seg_lax = np.stack([labels_at(lax_pts, geom, t, frames) for t in range(frames)], 1)
  intensity = np.array([0.35, 1.0, 0.15, 0.9], np.float32)
  fine_sax, fine_lax = _view_points(geom, size * supersample, num_sax, fov_mm)

  def image(fine_pts, shape):
    seg = np.stack([labels_at(fine_pts, geom, t, frames) for t in range(frames)], 1)
    w = seg.shape[-1]
    bg = 0.35 + 0.08 * np.sin(w / 7.0 + np.arange(w) / (3.0 * supersample))[None, None, None, :]
    img = np.where(seg == 0, bg, intensity[seg])
    img = img.reshape(*shape[:2], size, supersample, size, supersample).mean((3, 5))
    return (img + rng.normal(0, noise, shape)).astype(np.float32)

  return {"sax": image(fine_sax, seg_sax.shape), "lax": image(fine_lax, seg_lax.shape), "seg_sax": seg_sax,
          "seg_lax": seg_lax}


def cardiac_cohort(num: int, seed: int = 0, *, size: int = 32, frames: int = 10, num_sax: int = 6,
                   missing_fraction: float = 0.05) -> dict:
  """``num`` seeded subjects, stacked.

  Returns ``cine [N, 3 + S, T, H, W]`` (LAX first, the official layout),
  ``seg [N, 3 + S, T, H, W]``, ``phenotypes [N, 10]`` (:data:`PHENOTYPES`),
  ``disease [N]``, ``numerical [N, 5]`` (NaN where missing), ``binary
  [N, 2]`` (NaN where missing), ``categorical [N, 1]`` (-1 where missing)
  and the feature names.
  """
  rng = np.random.default_rng(seed)
  subjects = [draw_subject(rng) for _ in range(num)]
  views = [render_views(s["geometry"], rng, size=size, frames=frames, num_sax=num_sax) for s in subjects]
  cine = np.stack([np.concatenate([v["lax"], v["sax"]]) for v in views])
  seg = np.stack([np.concatenate([v["seg_lax"], v["seg_sax"]]) for v in views])
  num_ = np.array([[s["tabular"][k] for k in NUMERICAL] for s in subjects], np.float32)
  bin_ = np.array([[s["tabular"][k] for k in BINARY] for s in subjects], np.float32)
  cat_ = np.array([[s["tabular"][k] for k in CATEGORICAL] for s in subjects], np.int32)
  num_[rng.uniform(size=num_.shape) < missing_fraction] = np.nan
  bin_[rng.uniform(size=bin_.shape) < missing_fraction] = np.nan
  cat_[rng.uniform(size=cat_.shape) < missing_fraction] = -1
  return {"cine": cine, "seg": seg, "phenotypes": np.array([[s["phenotypes"][k] for k in PHENOTYPES]
                                                            for s in subjects], np.float32),
          "disease": np.array([s["disease"] for s in subjects], np.float32), "numerical": num_, "binary": bin_,
          "categorical": cat_, "num_lax": 3, "num_sax": num_sax, "subjects": subjects}
