"""Rule-based rewards for multiple-choice QA (AlphaMed; MedVLM-R1), robust to the usual hacks.

A reward is a pure function ``reward(completion_text, example) -> float``;
``example["answer"]`` is the gold option letter and ``example["options"]``
maps letters to option texts. They are registered by name in :data:`REWARDS`.

* ``accuracy``: 1.0 iff the completion has exactly one ``<answer>...</answer>``
  block (or, with ``tag="boxed"``, exactly one ``\\boxed{...}``) whose content
  names exactly one option letter, and that letter is the gold one;
* ``format``: 1.0 iff the whole completion is ``<think>...</think>`` followed
  by one ``<answer>...</answer>`` (whitespace between them allowed);
* ``option_accuracy``: like ``accuracy``, but the answer block may name the
  option by its text as well as by its letter (``"heparin"``, ``"B. heparin"``,
  ``"B"``): 1.0 iff the options it names are exactly the gold one. A leading
  letter and a quoted text that disagree, or two options' texts, score 0. It
  grades the free-text answers a small model copies from its context (the
  AlphaMed demo on SmolLM2-135M); the ``paper`` preset keeps ``accuracy``;
* ``partial`` (MedVLM-R1): 1.0 if the answer block is exactly the gold letter
  (optionally ``"B."`` or ``"(B)"``), 0.5 if it names only the gold letter with
  extra text, else 0.

MedVLM-R1's official rewards, as its released training code defines them, are kept
beside the stricter ones under their own names:

* ``medvlm_r1_format``: 1.0 iff the whole completion is ``<think>.*?</think>\\s*<answer>.*?</answer>``
  (a full match, dot matching newlines);
* ``medvlm_r1_accuracy``: the first ``<answer>(.*?)</answer>`` (any case of the tags), upper-cased: 1.0
  if it is exactly the gold letter, 0.5 if its only capital A-J is the gold letter but other text is
  there too (``"B."``), else 0. A second answer block is ignored and ``"B. heparin"`` scores 0 (the
  capitals of ``HEPARIN`` count as letters).

Evaluation (MedVLM-R1's protocol) is separate from the rewards:
:func:`evaluation_letter` is the first ``<answer>\\s*([A-Z])\\s*</answer>`` match.

Hacks that score 0: an empty answer, several answer blocks (or a stray extra
``<answer>``/``</answer>`` tag), the letter only outside the tags, and
listing several (or all) letters.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

Example = Mapping[str, Any]
RewardFn = Callable[[str, Example], float]

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
FORMAT_RE = re.compile(r"^\s*<think>(?:(?!<think>|</think>).)*?</think>\s*<answer>(?:(?!<answer>).)*?</answer>\s*$",
                       re.DOTALL)
_LETTER_RE = re.compile(r"(?<![A-Za-z])([A-J])(?![A-Za-z])")
_EXACT_RE = re.compile(r"^\s*\(?([A-J])\)?[.:]?\s*$")


def answer_block(completion: str, tag: str = "answer") -> str | None:
  """The content of the single answer block, or ``None`` if there are zero or several."""
  if tag == "answer":
    if completion.count("<answer>") != 1 or completion.count("</answer>") != 1:  # stray or repeated tags fail
      return None
    blocks = ANSWER_RE.findall(completion)
  else:
    blocks = BOXED_RE.findall(completion)
  return blocks[0] if len(blocks) == 1 else None


def named_letters(text: str, letters: str) -> set[str]:
  """Option letters named in ``text`` (standalone capitals among ``letters``)."""
  return {m for m in _LETTER_RE.findall(text) if m in letters}


def _letters(example: Example) -> str:
  options = example.get("options")
  return "".join(sorted(options)) if options else "ABCDE"


def accuracy_reward(completion: str, example: Example, *, tag: str = "answer") -> float:
  block = answer_block(completion, tag)
  if block is None:
    return 0.0
  named = named_letters(block, _letters(example))
  return float(named == {example["answer"]})


_LEADING_LETTER_RE = re.compile(r"^\s*\(?([A-J])(?:\)|[.:]|\s*$)")


def _words(text: str) -> str:
  """Lower-case words joined by single spaces, padded with one space on each side (whole-word matching)."""
  return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def named_options(block: str, options: Mapping[str, str]) -> set[str]:
  """Option letters that ``block`` names: a leading letter (``"B"``, ``"B."``, ``"(B)"``, ``"B: ..."``; not an article such as ``"A rare ..."``) plus every
  option whose whole text occurs in it (word boundaries, case and punctuation ignored; an option whose text is
  part of another named option's text is not counted twice). With neither, any standalone option letter."""
  text = _words(block)
  hits = {k for k, v in options.items() if _words(v).strip() and _words(v) in text}
  hits = {k for k in hits if not any(k != j and _words(options[k]) in _words(options[j]) for j in hits)}
  lead = _LEADING_LETTER_RE.match(block)
  if lead and lead.group(1) in options:
    hits.add(lead.group(1))
  return hits or named_letters(block, "".join(sorted(options)))


def option_accuracy_reward(completion: str, example: Example) -> float:
  block = answer_block(completion)
  if block is None or not example.get("options"):
    return 0.0
  return float(named_options(block, example["options"]) == {example["answer"]})


def format_reward(completion: str, example: Example) -> float:
  del example
  return float(FORMAT_RE.match(completion) is not None and len(ANSWER_RE.findall(completion)) == 1)


def partial_reward(completion: str, example: Example) -> float:
  block = answer_block(completion)
  if block is None:
    return 0.0
  exact = _EXACT_RE.match(block)
  if exact:
    return float(exact.group(1) == example["answer"])
  return 0.5 if named_letters(block, _letters(example)) == {example["answer"]} else 0.0


MEDVLM_R1_FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
MEDVLM_R1_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def medvlm_r1_format_reward(completion: str, example: Example) -> float:
  del example
  return float(MEDVLM_R1_FORMAT_RE.fullmatch(completion) is not None)


def medvlm_r1_accuracy_reward(completion: str, example: Example) -> float:
  match = MEDVLM_R1_ANSWER_RE.search(completion)
  if match is None:
    return 0.0
  answer = match.group(1).strip().upper()
  letters = re.findall(r"[A-J]", answer)
  if letters != [example["answer"]]:
    return 0.0
  return 1.0 if answer == example["answer"] else 0.5


EVAL_ANSWER_RE = re.compile(r"<answer>\s*([A-Z])\s*</answer>")


def evaluation_letter(completion: str) -> str | None:
  """The letter that MedVLM-R1's greedy evaluation reads: the first ``<answer> X </answer>`` (a lone capital)."""
  m = EVAL_ANSWER_RE.search(completion)
  return m.group(1) if m else None


REWARDS: dict[str, RewardFn] = {"accuracy": accuracy_reward, "format": format_reward, "partial": partial_reward,
                                 "option_accuracy": option_accuracy_reward, "medvlm_r1_format": medvlm_r1_format_reward,
                                 "medvlm_r1_accuracy": medvlm_r1_accuracy_reward}


def get_reward(name: str) -> RewardFn:
  if name not in REWARDS:
    raise ValueError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}")
  return REWARDS[name]
