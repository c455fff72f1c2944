"""The synthetic VQA world: geometry, each modality's physics, questions and the out-of-domain split."""

import collections

import numpy as np
import pytest

from jaxmed.synth import vqa


def test_rendering_is_deterministic_and_shaped():
  case = vqa.Case("chest", "MRI", True, "left lower", 7)
  a, b = vqa.render(case, 56), vqa.render(case, 56)
  assert a.shape == (56, 56, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, vqa.render(vqa.Case("chest", "MRI", True, "left lower", 8), 56))


@pytest.mark.parametrize("region", vqa.REGIONS)
def test_lesion_sits_in_the_organ_on_the_patients_side(region):
  for loc in ("right upper", "right lower") + (() if region == "liver" else ("left upper", "left lower")):
    lab, lesion = vqa.tissue_map(vqa.Case(region, "CT", True, loc, 3), 84)
    ys, xs = np.nonzero(lesion)
    assert lesion.sum() > 5
    # radiological convention: the patient's right is the viewer's left
    assert (xs.mean() < 42) == loc.startswith("right")
    assert (ys.mean() < 42) == loc.endswith("upper")
    assert (lab[lesion] == vqa.TISSUES.index("lesion")).all()
  lab, lesion = vqa.tissue_map(vqa.Case(region, "CT", False, "right upper", 3), 84)
  assert not lesion.any() and not (lab == vqa.TISSUES.index("lesion")).any()


def _mean(img, lab, tissue):
  return img[..., 0][lab == vqa.TISSUES.index(tissue)].mean()


def test_each_modality_has_its_own_contrast_and_noise():
  case = dict(region="brain", lesion=True, location="left upper", seed=11)
  lab, _ = vqa.tissue_map(vqa.Case(modality="CT", **case), 84)
  ct, mr, xr = (vqa.render(vqa.Case(modality=m, **case), 84).astype(float) for m in ("CT", "MRI", "X-ray"))
  assert _mean(ct, lab, "bone") > 250 > _mean(ct, lab, "organ")              # bone saturates the CT window
  assert _mean(ct, lab, "lesion") < _mean(ct, lab, "organ")                  # hypodense on CT
  assert _mean(mr, lab, "fluid") > _mean(mr, lab, "organ") > _mean(mr, lab, "bone")   # T2: fluid brightest
  assert _mean(mr, lab, "lesion") > _mean(mr, lab, "organ")                  # hyperintense on MRI
  assert _mean(xr, lab, "bone") > _mean(xr, lab, "organ")
  # Rician noise leaves a positive floor in MRI air; CT is black outside its circular field of view
  assert 2 < _mean(mr, lab, "air") < 20
  assert ct[0, 0, 0] == 0 and ct[42, 42].min() > 0


def test_questions_have_4_to_6_options_uniform_gold_and_true_answers():
  data = vqa.make_dataset(240, size=56, seed=1)
  letters = collections.Counter()
  for it in data["items"]:
    case = data["cases"][it["image"]]
    assert 4 <= len(it["options"]) <= 6 and it["answer"] in it["options"]
    assert len(set(it["options"].values())) == len(it["options"])
    gold = it["options"][it["answer"]]
    want = {"modality": case.modality, "organ": case.organ, "location": case.location,
            "abnormality": "a mass lesion" if case.lesion else "no abnormality"}[it["kind"]]
    assert gold == want
    assert it["kind"] != "location" or case.lesion
    letters[it["answer"]] += 1
  # gold positions: A-D are always available; each gets a fair share
  counts = np.array([letters[c] for c in "ABCD"], float)
  assert counts.min() > 0.6 * counts.mean()
  assert all("?" not in c and "option" not in c.lower() for c in data["captions"])


def test_split_by_modality_keeps_images_apart():
  items = vqa.make_dataset(90, size=56, seed=2)["items"]
  train, test = vqa.split_by_modality(items, ("MRI",), test_fraction=0.3)
  assert {it["modality"] for it in train} == {"MRI"}
  assert set(test) == {"MRI", "CT", "X-ray"}
  assert not {it["image"] for it in train} & {it["image"] for it in test["MRI"]}
  assert len(train) + sum(map(len, test.values())) == len(items)
