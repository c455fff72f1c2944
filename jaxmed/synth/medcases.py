"""Case questions that carry their own evidence: a reference passage, a short vignette and lettered options.

A pretrained instruct model knows nothing of :mod:`jaxmed.synth.medworld`'s
invented diseases, so every question brings what it needs (an open-book
MCQA). The reference passage states the facts of ``facts_per_passage``
diseases of the world (the patient's disease among them, in a random place);
the other diseases' facts are the distractors, and the options are drawn
from the passage first, so naming any entity that the passage mentions is
not enough.

Kinds (``hops``):

* ``diagnosis`` (1): the vignette lists the classic signs; which disease?
* ``drug`` (1): the vignette names the diagnosis; which first-line drug?
* ``organ`` (1): the vignette names the diagnosis; which organ is affected?
* ``signs_drug`` (2): the vignette lists the signs; which first-line drug?
  (signs -> disease -> drug, two lookups in the passage)
* ``signs_organ`` (2): the vignette lists the signs; which organ?

Shapes: each item is ``{"question", "options" {letter: text}, "answer",
"hops", "kind", "disease"}``, the same record as :func:`medworld.mcqa_items`
and the MCQA JSONL readers produce, so :func:`jaxmed.io.r1_prompt` renders it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from jaxmed.synth.gazetteer import lettered_options
from jaxmed.synth.medworld import World, _symptom_list

_ENTRY = re.compile(r"(?P<disease>[^.;]+?) presents with (?P<signs>[^;]+); it affects the (?P<organ>[^,]+), "
                    r"and its first-line treatment is (?P<drug>[^.]+)\.")
_CASE = re.compile(r"Case: A \d+-year-old (?:man|woman) (?:has been diagnosed with (?P<disease>[^.]+)|"
                   r"presents with (?P<signs>[^.]+))\. (?P<ask>.+)$")
KINDS = {"diagnosis": 1, "drug": 1, "organ": 1, "signs_drug": 2, "signs_organ": 2}
_AGES = (23, 31, 38, 45, 52, 59, 64, 71)


def passage_sentence(w: World, i: int) -> str:
  """One disease's entry in the reference passage: signs, organ and first-line drug."""
  return (f"{w.diseases[i]} presents with {_symptom_list(w, i)}; it affects the {w.organs[w.organ_of[i]]}, "
          f"and its first-line treatment is {w.drugs[w.drug_of[i]]}.")


def _options(rng, gold: str, in_passage: list[str], pool: tuple[str, ...], num_options: int):
  """Distractors from the passage first (distinct, not the gold), then from the whole world."""
  near = list(dict.fromkeys(x for x in in_passage if x != gold))
  far = [x for x in pool if x != gold and x not in near]
  rng.shuffle(near)
  rng.shuffle(far)
  return lettered_options(rng, gold, (near + far)[:num_options - 1], num_options)


def case_items(world: World, n: int, *, seed: int = 0, facts_per_passage: int = 4,
               kinds: tuple[str, ...] = tuple(KINDS)) -> list[dict[str, Any]]:
  """``n`` open-book case questions on ``world`` (kinds cycled in a shuffled order, 4 or 5 options)."""
  unknown = set(kinds) - set(KINDS)
  if unknown:
    raise ValueError(f"case_items: unknown kinds {sorted(unknown)}; known: {sorted(KINDS)}")
  if facts_per_passage > len(world.diseases):
    raise ValueError(f"case_items: facts_per_passage={facts_per_passage} exceeds the world's "
                     f"{len(world.diseases)} diseases")
  rng = np.random.default_rng(seed)
  w = world
  out = []
  for j in range(n):
    kind = kinds[j % len(kinds)]
    shown = [int(x) for x in rng.choice(len(w.diseases), facts_per_passage, replace=False)]
    i = shown[0]
    rng.shuffle(shown)
    passage = " ".join(passage_sentence(w, k) for k in shown)
    age, sex = int(rng.choice(_AGES)), str(rng.choice(["man", "woman"]))
    if kind in ("drug", "organ"):
      vignette = f"A {age}-year-old {sex} has been diagnosed with {w.diseases[i]}."
    else:
      vignette = f"A {age}-year-old {sex} presents with {_symptom_list(w, i)}."
    n_opt = int(rng.choice([4, 5]))
    if kind == "diagnosis":
      ask, (options, answer) = "Which disease does this patient most likely have?", _options(
          rng, w.diseases[i], [w.diseases[k] for k in shown], w.diseases, n_opt)
    elif kind in ("drug", "signs_drug"):
      ask, (options, answer) = "What is the first-line treatment for this patient?", _options(
          rng, w.drugs[w.drug_of[i]], [w.drugs[w.drug_of[k]] for k in shown], w.drugs, n_opt)
    else:
      ask, (options, answer) = "Which organ is affected in this patient?", _options(
          rng, w.organs[w.organ_of[i]], [w.organs[w.organ_of[k]] for k in shown], w.organs, n_opt)
    out.append({"question": f"Reference: {passage}\n\nCase: {vignette} {ask}", "options": options,
                "answer": answer, "hops": KINDS[kind], "kind": kind, "disease": i})
  return out


def oracle_answer(item: dict[str, Any]) -> str:
  """The letter that a perfect reader of the question's own text picks: the demo's accuracy ceiling.

  It parses the reference passage into (disease, signs, organ, drug) entries, finds the patient's entry
  from the vignette (the named diagnosis, or the entry with exactly these signs: one or two lookups) and
  returns the option that names the asked attribute. It reads nothing but ``item["question"]`` and
  ``item["options"]``, so 1.0 over a split shows every question is answerable from what it carries.
  """
  reference, case = item["question"].removeprefix("Reference: ").split("\n\nCase: ")
  entries = [{k: v.strip() for k, v in m.groupdict().items()} for m in _ENTRY.finditer(reference)]
  m = _CASE.match("Case: " + case)
  if m is None or not entries:
    raise ValueError(f"oracle_answer: not a medcases question: {item['question'][:80]!r}")
  key = "disease" if m["disease"] else "signs"
  hits = [e for e in entries if e[key] == m[key]]
  if len(hits) != 1:
    raise ValueError(f"oracle_answer: the passage has {len(hits)} entries for the vignette's {key}")
  field = {"Which disease": "disease", "What is the first-line": "drug", "Which organ": "organ"}
  want = next(hits[0][v] for k, v in field.items() if m["ask"].startswith(k))
  letters = [k for k, v in item["options"].items() if v == want]
  if len(letters) != 1:
    raise ValueError(f"oracle_answer: {len(letters)} options read {want!r}")
  return letters[0]
