"""Generic visual exercises: the picture shows what the worked answer says, and nothing is medical."""

import re

import numpy as np

from jaxmed import rl
from jaxmed.synth import shapes_vqa, vqa


def test_the_answer_is_in_the_picture_and_the_response_is_well_formed():
  ex = shapes_vqa.shape_exercises(60, size=56, seed=0)
  assert ex["images"].shape == (60, 56, 56, 3) and ex["images"].dtype == np.uint8
  for it in ex["items"]:
    img = ex["images"][it["image"]].astype(float)
    fg = img.max(-1) > 100                               # the shape's pixels (background ~30)
    ys, xs = np.nonzero(fg)
    think = it["response"].split("<think>")[1]
    color = next(c for c in shapes_vqa.COLORS if f" {c} " in think)
    pos = next(p for p in shapes_vqa.POSITIONS if p in think)
    assert (ys.mean() < 28) == pos.startswith("upper") and (xs.mean() < 28) == pos.endswith("left")
    rgb = img[fg].mean(0)
    assert np.argmax(rgb) == np.argmax(shapes_vqa.COLORS[color]) or color == "yellow"
    assert rl.format_reward(it["response"], it) == 1.0 and rl.partial_reward(it["response"], it) == 1.0
    assert it["options"][it["answer"]] in think
    assert 4 <= len(it["options"]) <= 5 and len(set(it["options"].values())) == len(it["options"])


def test_no_medical_words_and_uniform_letters():
  ex = shapes_vqa.shape_exercises(400, seed=1)
  text = " ".join(it["question"] + " ".join(it["options"].values()) + it["response"] for it in ex["items"]).lower()
  for word in list(vqa.MODALITIES) + list(vqa.ORGAN_OF.values()) + ["lesion", "mass", "abnormal"]:
    assert not re.search(rf"\b{re.escape(word.lower())}\b", text), word
  letters = [it["answer"] for it in ex["items"]]
  assert min(letters.count(c) for c in "ABCD") > 60          # ~90 each of A-D (E only with 5 options)


def test_seeded():
  a, b = shapes_vqa.shape_exercises(5, seed=3), shapes_vqa.shape_exercises(5, seed=3)
  assert (a["images"] == b["images"]).all() and a["items"] == b["items"]


def test_caption_think_opens_with_the_pictures_caption_and_draws_the_same_pictures():
  shows, caption = shapes_vqa.shape_exercises(20, seed=4), shapes_vqa.shape_exercises(20, seed=4, think="caption")
  assert (shows["images"] == caption["images"]).all()
  for a, b in zip(shows["items"], caption["items"]):
    assert a["answer"] == b["answer"] and a["caption"] == b["caption"]
    assert b["response"].startswith(f"<think>{b['caption']} {b['options'][b['answer']]} is option {b['answer']}.")
    assert rl.medvlm_r1_format_reward(b["response"], b) == 1.0 and rl.medvlm_r1_accuracy_reward(b["response"], b) == 1.0
