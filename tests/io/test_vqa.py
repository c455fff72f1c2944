"""VQA JSONL reader: both layouts give one schema; each malformed record names file, line and field."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxmed.io import MCQAError, load_vqa_jsonl


def _write(path, records):
  path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
  return str(path)


@pytest.fixture
def image(tmp_path):
  Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "scan.png")
  return "scan.png"


def test_medvlm_r1_and_omnimedvqa_layouts_agree(tmp_path, image):
  path = _write(tmp_path / "a.jsonl", [
      {"image": image, "question": "Which modality?", "options": {"A": "CT", "B": "MRI", "C": "X-ray"},
       "answer": "B", "modality": "MRI"},
      {"image_path": image, "question": "Which modality?", "option_A": "CT", "option_B": "MRI", "option_C": "X-ray",
       "gt_answer": "MRI", "modality_type": "MRI"},
  ])
  a, b = load_vqa_jsonl(path)
  assert a == b
  assert a["answer"] == "B" and a["image"] == str(tmp_path / image) and a["options"]["C"] == "X-ray"


@pytest.mark.parametrize("record, message", [
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer": "A"}, "missing field 'image'"),
    ({"image": "missing.png", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "A"}, "does not exist"),
    ({"image": "IMG", "options": {"A": "x", "B": "y"}, "answer": "A"}, "missing field 'question'"),
    ({"image": "IMG", "question": "q", "options": {"A": "x"}, "answer": "A"}, "at least two options"),
    ({"image": "IMG", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "C"}, "field 'answer' is 'C'"),
    ({"image": "IMG", "question": "q", "option_A": "x", "option_B": "y", "gt_answer": "z"}, "matches no option"),
    ({"image": "IMG", "question": "q", "options": {"A": "x", "B": "y"}}, "missing field 'answer'"),
    ("{not json", "not valid JSON"),
])
def test_malformed_records_name_file_line_and_field(tmp_path, image, record, message):
  if isinstance(record, dict) and record.get("image") == "IMG":
    record = dict(record, image=image)
  good = {"image": image, "question": "q", "options": {"A": "x", "B": "y"}, "answer": "A"}
  path = _write(tmp_path / "bad.jsonl", [good, record])
  with pytest.raises(MCQAError, match=rf"bad.jsonl:2: .*{message}"):
    load_vqa_jsonl(path)
