"""A seeded synthetic medical VQA world: MRI-, CT- and X-ray-like images with organs, lesions and questions.

Each case is one image of one body region (``brain``, ``chest``, ``liver``,
``kidneys``) in one modality, with or without one lesion at one of four
locations. Left and right are the patient's, in the radiological convention:
the patient's right is on the viewer's left.

The tissue layout (a label map of :data:`TISSUES`) is drawn from shapes (body
ellipse with a fat rim, organs, bones, fluid) and turned into intensities by
each modality's own physics:

* ``CT``: Hounsfield units (air -1000, fat -100, soft tissue 30-60, bone
  1000; a lesion is hypodense in solid organs and a soft-tissue nodule in the
  lung), Gaussian noise of about 12 HU, a window (lung or soft tissue) and a
  circular field of view;
* ``MRI``: T2-weighted-like contrast (fluid brightest, fat bright, bone and
  air dark; a lesion is hyperintense), a smooth multiplicative bias field and
  Rician noise (the magnitude of complex Gaussian noise);
* ``X-ray``: a frontal projection: the attenuation of each tissue is summed
  over a depth profile and blurred, shown as ``1 - exp(-attenuation)`` (bone
  white, air dark), with Poisson (quantum) noise; a lesion adds an opacity.

:func:`questions` asks about modality, organ, abnormality presence and
lesion location, with 4 to 6 options and the gold letter uniform;
:func:`caption` describes an image without any question (the base VLM's
pretraining text). :func:`make_dataset` renders cases and
:func:`split_by_modality` gives the out-of-domain protocol (train on MRI,
test on CT and X-ray).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from jaxmed.synth.gazetteer import lettered_options

MODALITIES = ("MRI", "CT", "X-ray")
REGIONS = ("brain", "chest", "liver", "kidneys")
LOCATIONS = ("right upper", "left upper", "right lower", "left lower")   # the patient's sides
TISSUES = ("air", "fat", "soft", "organ", "fluid", "bone", "lung", "lesion")
ORGAN_OF = {"brain": "brain", "chest": "lung", "liver": "liver", "kidneys": "kidney"}
_DISTRACTOR_MODALITIES = ("ultrasound", "PET", "mammography")
_DISTRACTOR_ORGANS = ("spleen", "pancreas", "bladder", "thyroid", "heart", "bowel")
_FINDINGS = ("no abnormality", "a mass lesion", "a fracture", "free air", "a foreign body")
_MODALITY_WORDS = {"MRI": "MRI", "CT": "CT", "X-ray": "X-ray"}


@dataclasses.dataclass(frozen=True)
class Case:
  region: str
  modality: str
  lesion: bool
  location: str          # one of LOCATIONS (meaningful when lesion)
  seed: int

  @property
  def organ(self) -> str:
    return ORGAN_OF[self.region]


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
  c, s = np.cos(angle), np.sin(angle)
  y, x = yy - cy, xx - cx
  return ((c * x + s * y) / rx) ** 2 + ((-s * x + c * y) / ry) ** 2 <= 1.0


def tissue_map(case: Case, size: int) -> tuple[np.ndarray, np.ndarray]:
  """``[size, size]`` tissue labels (indices into :data:`TISSUES`) and the lesion mask."""
  rng = np.random.default_rng(case.seed)
  yy, xx = np.mgrid[:size, :size] / (size - 1)   # 0..1, y down, x right (viewer's)
  jit = lambda s=0.02: rng.uniform(-s, s)  # noqa: E731
  lab = np.zeros((size, size), np.int32)
  T = {t: i for i, t in enumerate(TISSUES)}
  body = _ellipse(yy, xx, 0.5 + jit(), 0.5 + jit(), 0.44, 0.40 if case.region == "brain" else 0.46)
  lab[body] = T["fat"]
  inner = _ellipse(yy, xx, 0.5, 0.5, 0.40, 0.36 if case.region == "brain" else 0.42)
  lab[inner] = T["soft"]
  organ = np.zeros_like(body)
  if case.region == "brain":
    lab[inner & ~_ellipse(yy, xx, 0.5, 0.5, 0.37, 0.33)] = T["bone"]     # skull
    organ = _ellipse(yy, xx, 0.5, 0.5, 0.35 + jit(), 0.31 + jit())
    lab[organ] = T["organ"]
    for side in (-1, 1):                                                 # lateral ventricles
      lab[_ellipse(yy, xx, 0.47, 0.5 + side * 0.06, 0.09, 0.03, side * 0.3)] = T["fluid"]
  elif case.region == "chest":
    for side in (-1, 1):
      lung = _ellipse(yy, xx, 0.47 + jit(), 0.5 + side * (0.2 + jit()), 0.27, 0.15)
      lab[lung] = T["lung"]
      organ |= lung
    lab[_ellipse(yy, xx, 0.55, 0.54, 0.12, 0.12)] = T["organ"]          # heart, to the patient's left
    organ &= lab == T["lung"]
  elif case.region == "liver":
    organ = _ellipse(yy, xx, 0.47 + jit(), 0.36 + jit(), 0.24, 0.22)    # the patient's right: image left
    lab[organ] = T["organ"]
    lab[_ellipse(yy, xx, 0.42, 0.68, 0.10, 0.09)] = T["fluid"]          # stomach contents
    organ = lab == T["organ"]
  else:
    for side in (-1, 1):
      kidney = _ellipse(yy, xx, 0.55 + jit(), 0.5 + side * (0.2 + jit()), 0.13, 0.08, side * 0.25)
      lab[kidney] = T["organ"]
      organ |= kidney
  if case.region != "brain":
    lab[_ellipse(yy, xx, 0.78, 0.5, 0.06, 0.06)] = T["bone"]           # vertebral body
  lesion = np.zeros_like(body)
  if case.lesion:
    # viewer's left half is the patient's right
    x_half = (xx < 0.5) if case.location.startswith("right") else (xx >= 0.5)
    y_half = (yy < 0.5) if case.location.endswith("upper") else (yy >= 0.5)
    where = np.argwhere(organ & x_half & y_half & (np.abs(xx - 0.5) > 0.06) & (np.abs(yy - 0.5) > 0.04))
    if len(where) == 0:
      raise ValueError(f"tissue_map: no room for a lesion at {case.location} in the {case.region} (size {size})")
    cy, cx = where[rng.integers(len(where))] / (size - 1)
    r = rng.uniform(0.05, 0.08)
    lesion = _ellipse(yy, xx, cy, cx, r, r * rng.uniform(0.8, 1.2)) & organ
    lab[lesion] = T["lesion"]
  return lab, lesion


_CT_HU = {"air": -1000, "fat": -100, "soft": 40, "fluid": 5, "bone": 1000, "lung": -850}
_CT_ORGAN_HU = {"brain": 35, "lung": -850, "liver": 60, "kidney": 30}
_MR = {"air": 0.0, "fat": 0.7, "soft": 0.35, "fluid": 1.0, "bone": 0.06, "lung": 0.04}
_MR_ORGAN = {"brain": 0.45, "lung": 0.04, "liver": 0.28, "kidney": 0.55}
_XR_MU = {"air": 0.0, "fat": 0.35, "soft": 0.5, "fluid": 0.5, "bone": 2.5, "lung": 0.08}
_XR_ORGAN = {"brain": 0.55, "lung": 0.08, "liver": 0.6, "kidney": 0.55}


def _values(table, organ_value, lesion_value):
  return np.array([table.get(t, 0.0) if t not in ("organ", "lesion") else (organ_value if t == "organ" else
                   lesion_value) for t in TISSUES], np.float64)


def _smooth(img, sigma):
  from scipy.ndimage import gaussian_filter

  return gaussian_filter(img, sigma)


def render(case: Case, size: int = 56) -> np.ndarray:
  """The case's image, ``[size, size, 3]`` uint8 (grey replicated to RGB, as a PNG would be stored)."""
  lab, _ = tissue_map(case, size)
  rng = np.random.default_rng(case.seed + 1)
  yy, xx = np.mgrid[:size, :size] / (size - 1)
  organ = case.organ
  if case.modality == "CT":
    lesion = 40.0 if organ == "lung" else _CT_ORGAN_HU[organ] - 35.0
    hu = _values(_CT_HU, _CT_ORGAN_HU[organ], lesion)[lab] + rng.normal(0, 12, lab.shape)
    lo, hi = (-1000, 200) if organ == "lung" else (-160, 240)
    img = np.clip((hu - lo) / (hi - lo), 0, 1)
    img[(yy - 0.5) ** 2 + (xx - 0.5) ** 2 > 0.5 ** 2] = 0.0          # outside the scan's field of view
  elif case.modality == "MRI":
    sig = _values(_MR, _MR_ORGAN[organ], min(1.0, _MR_ORGAN[organ] + 0.4))[lab]
    c = rng.uniform(-0.2, 0.2, 3)
    sig = sig * (1.0 + c[0] * (yy - 0.5) + c[1] * (xx - 0.5) + c[2] * (yy - 0.5) * (xx - 0.5))  # bias field
    noise = 0.04
    img = np.abs(sig + noise * rng.normal(size=lab.shape) + 1j * noise * rng.normal(size=lab.shape))  # Rician
    img = np.clip(img / 1.05, 0, 1)
  elif case.modality == "X-ray":
    mu = _values(_XR_MU, _XR_ORGAN[organ], _XR_ORGAN[organ] + (0.9 if organ == "lung" else 0.8))[lab]
    depth = np.sqrt(np.clip(1 - ((xx - 0.5) / 0.5) ** 2, 0, 1))      # a thicker body towards the midline
    atten = _smooth(mu * (0.6 + 0.8 * depth), 0.8)
    if organ == "lung":                                               # ribs: bright bands over the chest
      for k in range(5):
        atten += 0.6 * (np.abs(yy - (0.25 + 0.12 * k) - 0.08 * (xx - 0.5) ** 2 * 4) < 0.012) * (lab > 0)
    expected = 200.0 * (1 - np.exp(-atten))
    img = np.clip(rng.poisson(expected) / 200.0, 0, 1)
  else:
    raise ValueError(f"render: modality must be one of {MODALITIES}, got {case.modality!r}")
  grey = (img * 255).round().astype(np.uint8)
  return np.repeat(grey[..., None], 3, axis=-1)


def caption(case: Case) -> str:
  """A report-style description of the image, with no question in it."""
  view = "A frontal X-ray" if case.modality == "X-ray" else f"An axial {case.modality} image"
  part = {"brain": "of the head showing the brain", "chest": "of the chest showing the lungs",
          "liver": "of the abdomen showing the liver", "kidneys": "of the abdomen showing both kidneys"}[case.region]
  finding = (f"There is a mass lesion in the {case.location} {case.organ}." if case.lesion
             else f"The {case.organ} looks normal, with no lesion.")
  return f"{view} {part}. {finding}"


def questions(case: Case, *, seed: int = 0) -> list[dict[str, Any]]:
  """The case's VQA items (modality, organ, abnormality, and location when there is a lesion)."""
  rng = np.random.default_rng([seed, case.seed])
  out = []

  def add(kind, question, gold, distractors, k):
    options, letter = lettered_options(rng, gold, [d for d in distractors if d != gold], k)
    out.append({"question": question, "options": options, "answer": letter, "kind": kind,
                "modality": case.modality, "region": case.region, "case": case.seed})

  add("modality", "Which imaging modality was used to acquire this image?", _MODALITY_WORDS[case.modality],
      list(MODALITIES) + list(_DISTRACTOR_MODALITIES), int(rng.integers(4, 7)))
  organs = sorted(set(ORGAN_OF.values())) + list(_DISTRACTOR_ORGANS)
  add("organ", "Which organ is mainly shown in this image?", case.organ, organs, int(rng.integers(4, 7)))
  finding = "a mass lesion" if case.lesion else "no abnormality"
  add("abnormality", f"What abnormality is seen in the {case.organ}?", finding, list(_FINDINGS), 4)
  if case.lesion:
    add("location", "Where is the lesion located (the patient's side)?", case.location,
        list(LOCATIONS) + ["central"], int(rng.integers(4, 6)))
  return out


def make_cases(n: int, *, modalities: Sequence[str] = MODALITIES, lesion_rate: float = 0.5,
               seed: int = 0) -> list[Case]:
  """``n`` cases with region, modality, lesion and location drawn uniformly (lesions at ``lesion_rate``;
  a liver lesion is on the patient's right, where the liver is)."""
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    region = str(rng.choice(REGIONS))
    where = [loc for loc in LOCATIONS if region != "liver" or loc.startswith("right")]  # the liver is right-sided
    out.append(Case(region=region, modality=str(rng.choice(list(modalities))), lesion=bool(rng.random() < lesion_rate),
                    location=str(rng.choice(where)), seed=int(seed * 1_000_003 + i)))
  return out


def make_dataset(n: int, *, size: int = 56, modalities: Sequence[str] = MODALITIES, seed: int = 0
                 ) -> dict[str, Any]:
  """Rendered cases: ``images`` ``[n, size, size, 3]`` uint8, ``cases``, ``captions`` and ``items``
  (every question, each with its ``image`` index)."""
  cases = make_cases(n, modalities=modalities, seed=seed)
  images = np.stack([render(c, size) for c in cases])
  items = [dict(q, image=i) for i, c in enumerate(cases) for q in questions(c, seed=seed)]
  return {"images": images, "cases": cases, "captions": [caption(c) for c in cases], "items": items}


def split_by_modality(items: Sequence[dict], train: Sequence[str] = ("MRI",), *, test_fraction: float = 0.3,
                      seed: int = 0) -> tuple[list, dict[str, list]]:
  """``(train items, {modality: test items})``: the ``train`` modalities' images are split in train and
  in-domain test (by image, so no image is in both); every other modality is test only."""
  rng = np.random.default_rng(seed)
  in_domain = sorted({it["image"] for it in items if it["modality"] in train})
  held = set(rng.permutation(in_domain)[:int(round(test_fraction * len(in_domain)))].tolist())
  tr = [it for it in items if it["modality"] in train and it["image"] not in held]
  test: dict[str, list] = {}
  for it in items:
    if it["modality"] not in train or it["image"] in held:
      test.setdefault(it["modality"], []).append(it)
  return tr, test
