"""MCQA JSONL: the three source formats convert to one schema; malformed records name file, line and field."""

import json

import pytest

from jaxmed.io import MCQAError, load_mcqa_jsonl, r1_prompt


def _write(path, records):
  path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
  return str(path)


def test_sources_convert_to_one_schema(tmp_path):
  medqa = _write(tmp_path / "medqa.jsonl", [
      {"question": "First-line drug?", "options": {"A": "aspirin", "B": "heparin", "C": "insulin"}, "answer_idx": "B"},
      {"question": "Which organ?", "options": {"A": "lung", "B": "liver"}, "answer": "liver"}])
  recs = load_mcqa_jsonl(medqa)
  assert recs[0] == {"question": "First-line drug?", "options": {"A": "aspirin", "B": "heparin", "C": "insulin"},
                     "answer": "B"}
  assert recs[1]["answer"] == "B"
  mm = _write(tmp_path / "medmcqa.jsonl", [{"question": "q", "opa": "w", "opb": "x", "opc": "y", "opd": "z", "cop": 2}])
  assert load_mcqa_jsonl(mm, source="medmcqa")[0]["answer"] == "C"
  assert load_mcqa_jsonl(mm, source="medmcqa", cop_base=1)[0]["answer"] == "B"
  pq = _write(tmp_path / "pubmedqa.jsonl", [{"QUESTION": "Does X help?", "context": ["a.", "b."],
                                               "final_decision": "maybe"}])
  rec = load_mcqa_jsonl(pq, source="pubmedqa")[0]
  assert rec["options"] == {"A": "yes", "B": "no", "C": "maybe"} and rec["answer"] == "C"
  assert rec["question"].startswith("a. b.")
  prompt = r1_prompt(recs[0])
  assert "<answer></answer>" in prompt and "B. heparin" in prompt


@pytest.mark.parametrize("bad,message", [
    ({"options": {"A": "x", "B": "y"}, "answer_idx": "A"}, r":2: missing field 'question'"),
    ({"question": "q", "options": {"A": "x", "B": "y"}}, r":2: missing field 'answer_idx'"),
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "E"}, r":2: field 'answer_idx' is 'E'"),
    ({"question": "q", "options": ["x", "y"], "answer_idx": "A"}, r":2: field 'options' must map"),
    ("{not json", r":2: not valid JSON"),
])
def test_malformed_record_names_file_line_and_field(tmp_path, bad, message):
  good = {"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}
  path = _write(tmp_path / "bad.jsonl", [good, bad])
  with pytest.raises(MCQAError, match="bad.jsonl" + message):
    load_mcqa_jsonl(path)


def test_medmcqa_and_pubmedqa_errors(tmp_path):
  path = _write(tmp_path / "m.jsonl", [{"question": "q", "opa": "w", "opb": "x", "opc": "y", "cop": 0}])
  with pytest.raises(MCQAError, match=r"m.jsonl:1: missing field 'opd'"):
    load_mcqa_jsonl(path, source="medmcqa")
  path = _write(tmp_path / "p.jsonl", [{"question": "q", "final_decision": "perhaps"}])
  with pytest.raises(MCQAError, match=r"p.jsonl:1: field 'final_decision' is 'perhaps'"):
    load_mcqa_jsonl(path, source="pubmedqa")


def test_medvlm_r1_prompt_is_the_released_text():
  from jaxmed.io import MEDVLM_R1_TASK, medvlm_r1_prompt
  text = medvlm_r1_prompt({"question": "Which organ is shown?", "options": {"B": "lung", "A": "liver"}})
  assert text.startswith("Which organ is shown?\nA) liver\nB) lung \nYour task: \n1. Think through")
  assert text.endswith("inside <answer>...</answer> tags.\n3. No extra information or text outside of these tags.")
  assert text.count(MEDVLM_R1_TASK) == 1
