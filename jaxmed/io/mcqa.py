"""Multiple-choice medical QA from JSONL, in one schema, with converters and the R1-style prompt.

The common record (MedQA's schema)::

  {"question": str, "options": {"A": str, "B": str, ...}, "answer_idx": "B"}

:func:`load_mcqa_jsonl` reads one record per line with a ``source`` format:

* ``"medqa"``: the schema above (``answer`` holding the option text is
  accepted in addition to ``answer_idx``);
* ``"medmcqa"``: ``question``, ``opa``..``opd`` and ``cop`` (the correct
  option, 0-based ``0..3``; a 1-based ``1..4`` file is converted with
  ``cop_base=1``);
* ``"pubmedqa"``: ``question`` (or ``QUESTION``), optional ``context``
  (string or list), ``final_decision`` in ``yes|no|maybe`` -> options A/B/C.

Every record comes back as ``{"question", "options", "answer"}`` (``answer``
is the gold letter). A malformed record raises :class:`MCQAError` naming the
file, the 1-based line number and the missing or bad field.
"""

from __future__ import annotations

import json
import os
import string
from typing import Any

SOURCES = ("medqa", "medmcqa", "pubmedqa")

# AlphaMed / MedVLM-R1 style: reason inside <think>, then the single letter inside <answer>.
R1_INSTRUCTION = ("Answer the following multiple-choice question. Think step by step inside <think></think>, "
                  "then give only the letter of the correct option inside <answer></answer>.")


class MCQAError(ValueError):
  """A QA record is malformed: names the file, the line and the field."""


def _fail(path, line, msg):
  raise MCQAError(f"{path}:{line}: {msg}")


def _from_medqa(rec, path, line):
  options = rec.get("options")
  if not isinstance(options, dict) or len(options) < 2:
    _fail(path, line, "field 'options' must map option letters to texts (at least 2)")
  if not all(k in string.ascii_uppercase for k in options):
    _fail(path, line, f"field 'options' has keys {sorted(options)}; expected capital letters")
  answer = rec.get("answer_idx")
  if answer is None and "answer" in rec:
    answer = next((k for k, v in options.items() if v == rec["answer"]), None)
    if answer is None:
      _fail(path, line, f"field 'answer' {rec['answer']!r} matches no option text")
  if answer is None:
    _fail(path, line, "missing field 'answer_idx'")
  if answer not in options:
    _fail(path, line, f"field 'answer_idx' is {answer!r}, not one of the options {sorted(options)}")
  return rec["question"], {k: str(v) for k, v in sorted(options.items())}, answer


def _from_medmcqa(rec, path, line, cop_base):
  texts = []
  for key in ("opa", "opb", "opc", "opd"):
    if key not in rec:
      _fail(path, line, f"missing field {key!r}")
    texts.append(str(rec[key]))
  if "cop" not in rec:
    _fail(path, line, "missing field 'cop'")
  idx = int(rec["cop"]) - cop_base
  if not 0 <= idx < 4:
    _fail(path, line, f"field 'cop' is {rec['cop']!r}; expected {cop_base}..{cop_base + 3}")
  return rec["question"], dict(zip("ABCD", texts)), "ABCD"[idx]


def _from_pubmedqa(rec, path, line):
  decision = rec.get("final_decision")
  if decision not in ("yes", "no", "maybe"):
    _fail(path, line, f"field 'final_decision' is {decision!r}; expected 'yes', 'no' or 'maybe'")
  context = rec.get("context", "")
  if isinstance(context, dict):
    context = context.get("contexts", "")
  if isinstance(context, list):
    context = " ".join(map(str, context))
  question = rec.get("question", rec.get("QUESTION"))
  if question is None:
    _fail(path, line, "missing field 'question'")
  question = f"{context}\n{question}".strip() if context else question
  return question, {"A": "yes", "B": "no", "C": "maybe"}, {"yes": "A", "no": "B", "maybe": "C"}[decision]


def jsonl_records(path: str):
  """``(line number, record dict)`` for every non-blank line; a missing file, bad JSON or a non-object raises
  :class:`MCQAError` naming the file and the line."""
  if not os.path.exists(path):
    raise MCQAError(f"{path}: file not found")
  with open(path, encoding="utf-8") as f:
    for line_no, raw in enumerate(f, start=1):
      if not raw.strip():
        continue
      try:
        rec = json.loads(raw)
      except json.JSONDecodeError as e:
        _fail(path, line_no, f"not valid JSON ({e.msg})")
      if not isinstance(rec, dict):
        _fail(path, line_no, "a record must be a JSON object")
      yield line_no, rec


def load_mcqa_jsonl(path: str, *, source: str = "medqa", cop_base: int = 0) -> list[dict[str, Any]]:
  """All records of a JSONL file as ``{"question", "options", "answer"}`` dicts (see the module docstring)."""
  if source not in SOURCES:
    raise ValueError(f"load_mcqa_jsonl: source must be one of {SOURCES}, got {source!r}")
  records = []
  for line_no, rec in jsonl_records(path):
    if source != "pubmedqa" and not isinstance(rec.get("question"), str):
      _fail(path, line_no, "missing field 'question' (a string)")
    if source == "medqa":
      q, options, answer = _from_medqa(rec, path, line_no)
    elif source == "medmcqa":
      q, options, answer = _from_medmcqa(rec, path, line_no, cop_base)
    else:
      q, options, answer = _from_pubmedqa(rec, path, line_no)
    records.append({"question": q, "options": options, "answer": answer})
  return records


def r1_prompt(record: dict[str, Any], instruction: str = R1_INSTRUCTION) -> str:
  """The user turn: instruction, question and lettered options (render it with the chat template)."""
  options = "\n".join(f"{k}. {v}" for k, v in sorted(record["options"].items()))
  return f"{instruction}\n\nQuestion: {record['question']}\nOptions:\n{options}"


# MedVLM-R1's released prompt: the question (with ``A) option`` lines), then this task text.
MEDVLM_R1_TASK = ("Your task: \n1. Think through the question step by step, enclose your reasoning process in "
                  "<think>...</think> tags. \n2. Then provide the correct single-letter choice (A, B, C, D,...) "
                  "inside <answer>...</answer> tags.\n3. No extra information or text outside of these tags.")


def medvlm_r1_prompt(record: dict[str, Any]) -> str:
  """MedVLM-R1's user text: ``"{question}\nA) ...\nB) ... \n" + MEDVLM_R1_TASK`` (the image goes before it)."""
  options = "\n".join(f"{k}) {v}" for k, v in sorted(record["options"].items()))
  return f"{record['question']}\n{options} \n{MEDVLM_R1_TASK}"
