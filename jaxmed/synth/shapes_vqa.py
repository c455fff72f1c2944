"""Generic (non-medical) visual think/answer exercises: coloured shapes with worked multiple-choice answers.

A general-purpose VLM such as Qwen2-VL arrives at MedVLM-R1's GRPO stage
having answered everyday visual questions; a base model trained from scratch
has not. These exercises stand in for that general visual instruction data:
one shape (:data:`SHAPES`) of one colour (:data:`COLORS`) in one quadrant of
the picture (:data:`POSITIONS`, the viewer's sides) on a noisy dark
background, with a question about the shape, its colour or its position, 4 or
5 lettered options, and a worked response in the R1 format::

  <think>The picture shows a red triangle at the upper left. triangle is option C.</think>
  <answer>C</answer>

Nothing in them is medical: no modality, organ or lesion words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxmed.synth.gazetteer import lettered_options

SHAPES = ("circle", "square", "triangle", "cross", "ring")
COLORS = {"red": (220, 50, 40), "green": (40, 190, 70), "blue": (50, 90, 230), "yellow": (230, 210, 40),
          "purple": (150, 60, 200)}
POSITIONS = ("upper left", "upper right", "lower left", "lower right")


def render_shape(shape: str, color: str, position: str, size: int, rng: np.random.Generator) -> np.ndarray:
  """``[size, size, 3]`` uint8: the shape, about a fifth of the picture wide, in its quadrant."""
  yy, xx = np.mgrid[:size, :size] / (size - 1)
  cy = (0.27 if position.startswith("upper") else 0.73) + rng.uniform(-0.04, 0.04)
  cx = (0.27 if position.endswith("left") else 0.73) + rng.uniform(-0.04, 0.04)
  r = rng.uniform(0.13, 0.19)
  dy, dx = yy - cy, xx - cx
  if shape == "circle":
    inside = dy ** 2 + dx ** 2 <= r ** 2
  elif shape == "ring":
    inside = ((0.55 * r) ** 2 <= dy ** 2 + dx ** 2) & (dy ** 2 + dx ** 2 <= r ** 2)
  elif shape == "square":
    inside = (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
  elif shape == "triangle":
    inside = (dy <= 0.8 * r) & (dy >= -r + 2 * np.abs(dx))
  elif shape == "cross":
    inside = ((np.abs(dy) <= 0.3 * r) & (np.abs(dx) <= r)) | ((np.abs(dx) <= 0.3 * r) & (np.abs(dy) <= r))
  else:
    raise ValueError(f"render_shape: shape must be one of {SHAPES}, got {shape!r}")
  img = rng.normal(30, 8, (size, size, 3))
  img[inside] = np.asarray(COLORS[color], float) + rng.normal(0, 10, (int(inside.sum()), 3))
  return np.clip(img, 0, 255).round().astype(np.uint8)


def shape_exercises(n: int, *, size: int = 56, seed: int = 0, think: str = "shows") -> dict[str, Any]:
  """``images`` ``[n, size, size, 3]`` uint8 and ``items`` (``question``, ``options``, ``answer``,
  ``response``, ``caption``, ``image`` index): one question per picture, about its shape, colour or position.

  ``think="shows"``: the reasoning is "The picture shows a red triangle at the upper left. triangle is option
  C."; ``think="caption"``: it opens with the picture's ``caption`` ("A red triangle at the upper left of a
  dark picture.", what the picture's own describe-the-image answer is), then names the option.
  """
  if think not in ("shows", "caption"):
    raise ValueError(f"shape_exercises: think must be 'shows' or 'caption', got {think!r}")
  rng = np.random.default_rng(seed)
  images, items = [], []
  for i in range(n):
    shape, color, pos = str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), str(rng.choice(POSITIONS))
    images.append(render_shape(shape, color, pos, size, rng))
    kind = ("shape", "color", "position")[int(rng.integers(3))]
    question, gold, pool = {
        "shape": ("Which shape is shown in this picture?", shape, SHAPES),
        "color": ("What color is the shape in this picture?", color, tuple(COLORS)),
        "position": ("Where is the shape in this picture?", pos, POSITIONS + ("center",)),
    }[kind]
    options, letter = lettered_options(rng, gold, [x for x in pool if x != gold], int(rng.integers(4, 6)))
    caption = f"A {color} {shape} at the {pos} of a dark picture."
    reason = (f"The picture shows a {color} {shape} at the {pos}." if think == "shows" else caption)
    reason += f" {gold} is option {letter}."
    items.append({"question": question, "options": options, "answer": letter, "kind": kind, "image": i,
                  "caption": caption, "response": f"<think>{reason}</think>\n<answer>{letter}</answer>"})
  return {"images": np.stack(images), "items": items}
