"""Multiple-choice medical VQA from JSONL (MedVLM-R1 / OmniMedVQA layouts), one record schema out.

Each line is one question about one image. Accepted fields:

* image: ``image`` or ``image_path`` (relative paths are resolved against the
  JSONL file's folder; the file must exist);
* question: ``question`` (MedVLM-R1's ``problem`` is accepted too);
* options: ``options`` ``{"A": text, ...}``, or OmniMedVQA's ``option_A`` ..
  ``option_F`` (at least two);
* answer: ``answer`` as the gold letter, or ``gt_answer`` as the gold option's
  text (OmniMedVQA);
* modality: ``modality`` or ``modality_type`` (e.g. ``"MRI"``, ``"CT"``,
  ``"X-Ray"``), optional (``""`` when absent).

Every record comes back as ``{"image", "question", "options", "answer",
"modality"}``. A malformed record raises :class:`~jaxmed.io.mcqa.MCQAError`
naming the file, the 1-based line and the field.
"""

from __future__ import annotations

import os
import string
from typing import Any

from jaxmed.io.mcqa import _fail, jsonl_records

_LETTERS = "ABCDEF"


def _first(rec: dict, keys: tuple[str, ...]):
  return next((rec[k] for k in keys if k in rec), None)


def _options(rec, path, line) -> dict[str, str]:
  if "options" in rec:
    options = rec["options"]
    if not isinstance(options, dict) or not all(isinstance(k, str) and k in string.ascii_uppercase for k in options):
      _fail(path, line, "field 'options' must map capital option letters to texts")
  else:
    options = {k: rec[f"option_{k}"] for k in _LETTERS if f"option_{k}" in rec}
  if len(options) < 2:
    _fail(path, line, "needs at least two options (field 'options' or 'option_A', 'option_B', ...)")
  return {k: str(v) for k, v in sorted(options.items())}


def load_vqa_jsonl(path: str) -> list[dict[str, Any]]:
  """All records of a VQA JSONL file (see the module docstring)."""
  root = os.path.dirname(os.path.abspath(path))
  out = []
  for line, rec in jsonl_records(path):
    image = _first(rec, ("image", "image_path"))
    if not isinstance(image, str) or not image:
      _fail(path, line, "missing field 'image' (or 'image_path'): the image file's path")
    image = image if os.path.isabs(image) else os.path.join(root, image)
    if not os.path.exists(image):
      _fail(path, line, f"field 'image': {image} does not exist")
    question = _first(rec, ("question", "problem"))
    if not isinstance(question, str):
      _fail(path, line, "missing field 'question' (a string)")
    options = _options(rec, path, line)
    if "answer" in rec:
      answer = str(rec["answer"]).strip()
      if answer not in options:
        _fail(path, line, f"field 'answer' is {rec['answer']!r}; expected one of the option letters {sorted(options)}")
    elif "gt_answer" in rec:
      answer = next((k for k, v in options.items() if v.strip() == str(rec["gt_answer"]).strip()), None)
      if answer is None:
        _fail(path, line, f"field 'gt_answer' {rec['gt_answer']!r} matches no option text")
    else:
      _fail(path, line, "missing field 'answer' (the gold letter) or 'gt_answer' (the gold option's text)")
    modality = _first(rec, ("modality", "modality_type"))
    out.append({"image": image, "question": question, "options": options, "answer": answer,
                "modality": "" if modality is None else str(modality)})
  return out
