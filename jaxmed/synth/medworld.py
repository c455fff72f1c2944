"""A seeded synthetic medical knowledge world: entities, relations, a base-model corpus and MCQA items.

Entities have invented names (so no real-world knowledge helps): diseases,
symptoms, organs, drugs, drug classes and lab findings. Each disease affects
one organ, shows 3 symptoms (the triple identifies it), raises one lab finding
and has one first-line drug; each drug belongs to one class.

* :func:`textbook_corpus`: paraphrased sentences stating every fact (no QA);
  each relation's first wording is "The {relation} of {disease} is {value}.";
* :func:`instruction_corpus`: generic, non-medical exercises written in the
  ``<think>...</think><answer>X</answer>`` format (recall and reading questions
  about :mod:`jaxmed.synth.gazetteer`'s invented countries, puzzles), so a base
  model trained on both corpora knows the answer format but has never seen a
  medical question;
* :func:`mcqa_items`: multiple-choice questions from the relations, 1-hop
  ("What is the first-line treatment / target organ / hallmark laboratory
  finding of {disease}?", the textbook's own relation phrases) and 2-hop
  (classic signs -> disease -> first-line drug, or its drug class), with 4 or
  5 options and the gold letter uniform; :func:`split_items` makes disjoint
  splits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxmed.synth.gazetteer import Gazetteer, lettered_options, reading_exercises, recall_exercises

_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "sil", "dex", "phy", "nar", "qui", "bel", "zor", "ul", "tan",
              "gri", "mo", "sar", "pel", "vin", "cor", "lex", "dra", "fen", "hal", "jun", "ost", "pra", "rim", "teb")


@dataclasses.dataclass(frozen=True)
class World:
  diseases: tuple[str, ...]
  symptoms: tuple[str, ...]
  organs: tuple[str, ...]
  drugs: tuple[str, ...]
  drug_classes: tuple[str, ...]
  labs: tuple[str, ...]
  organ_of: tuple[int, ...]          # disease -> organ
  symptoms_of: tuple[tuple[int, ...], ...]  # disease -> 3 symptoms
  lab_of: tuple[int, ...]            # disease -> lab finding
  drug_of: tuple[int, ...]           # disease -> first-line drug
  class_of: tuple[int, ...]          # drug -> drug class


def _names(rng, n, suffix, used):
  out = []
  while len(out) < n:
    word = "".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))).capitalize()
    if word not in used:
      used.add(word)
      out.append(f"{word}{suffix}")
  return tuple(out)


def make_world(num_diseases: int = 40, *, seed: int = 0) -> World:
  """A world with ``num_diseases`` diseases (and proportionally many other entities)."""
  rng = np.random.default_rng(seed)
  used: set[str] = set()
  n_sym, n_org, n_lab = max(12, num_diseases), max(6, num_diseases // 5), max(8, num_diseases // 2)
  n_cls = max(5, num_diseases // 6)
  diseases = _names(rng, num_diseases, " syndrome", used)
  symptoms = tuple(s.lower() for s in _names(rng, n_sym, "ic pain", used))
  organs = tuple(s.lower() for s in _names(rng, n_org, "", used))
  drugs = tuple(s.lower() for s in _names(rng, num_diseases, "mab", used))
  classes = tuple(s.lower() for s in _names(rng, n_cls, "ase inhibitors", used))
  labs = tuple(f"elevated {s.lower()}" for s in _names(rng, n_lab, "in", used))
  triples: set[tuple[int, ...]] = set()
  symptoms_of = []
  while len(symptoms_of) < num_diseases:
    t = tuple(sorted(rng.choice(n_sym, 3, replace=False).tolist()))
    if t not in triples:
      triples.add(t)
      symptoms_of.append(t)
  return World(diseases, symptoms, organs, drugs, classes, labs,
               organ_of=tuple(rng.integers(0, n_org, num_diseases).tolist()), symptoms_of=tuple(symptoms_of),
               lab_of=tuple(rng.integers(0, n_lab, num_diseases).tolist()),
               drug_of=tuple(rng.permutation(num_diseases).tolist()),
               class_of=tuple(rng.integers(0, n_cls, num_diseases).tolist()))


def textbook_corpus(world: World, *, paraphrases: int = 3, seed: int = 0) -> list[str]:
  """Sentences stating every fact, each in ``paraphrases`` different wordings (shuffled)."""
  rng = np.random.default_rng(seed)
  # The first wording of each relation is "The {relation} of {subject} is {value}.", the form the
  # 1-hop questions ask about ("What is the {relation} of {d}?"); the symptoms' second wording is the
  # reverse statement the 2-hop questions need ("{s} are the classic signs of {d}.").
  templates = {
      "organ": ("The target organ of {d} is {o}.", "{d} affects the {o}.", "In {d}, disease is found in the {o}."),
      "symptoms": ("The classic signs of {d} are {s}.", "{s} are the classic signs of {d}.",
                   "Patients with {d} present with {s}."),
      "lab": ("The hallmark laboratory finding of {d} is {l}.", "{d} shows {l} on blood tests.",
              "Laboratory work in {d} reveals {l}."),
      "drug": ("The first-line treatment of {d} is {r}.", "{d} is treated first with {r}.",
               "Doctors give {r} first for {d}."),
      "class": ("The drug class of {r} is {c}.", "{r} is one of the {c}.", "{r} belongs to the {c}."),
  }
  w = world
  out = []
  for i, d in enumerate(w.diseases):
    s = _symptom_list(w, i)
    facts = {"organ": dict(d=d, o=w.organs[w.organ_of[i]]), "symptoms": dict(d=d, s=s),
             "lab": dict(d=d, l=w.labs[w.lab_of[i]]), "drug": dict(d=d, r=w.drugs[w.drug_of[i]])}
    for kind, kw in facts.items():
      for t in templates[kind][:paraphrases]:
        out.append(_sentence(t.format(**kw)))
  for r, drug in enumerate(w.drugs):
    for t in templates["class"][:paraphrases]:
      out.append(_sentence(t.format(r=drug, c=w.drug_classes[w.class_of[r]])))
  rng.shuffle(out)
  return out


def _symptom_list(w: World, i: int) -> str:
  names = [w.symptoms[j] for j in w.symptoms_of[i]]
  return ", ".join(names[:-1]) + " and " + names[-1]


def _sentence(s: str) -> str:
  return s[0].upper() + s[1:]


def _mc(rng, question, gold, distractors, num_options):
  options, answer = lettered_options(rng, gold, distractors, num_options)
  return {"question": question, "options": options, "answer": answer}


def instruction_corpus(n: int, *, seed: int = 0, gazetteer: Gazetteer | None = None,
                       recall_fraction: float = 0.5, reading_fraction: float = 0.3) -> list[dict[str, Any]]:
  """Generic, non-medical multiple-choice exercises with a worked ``<think>`` response.

  Each item is ``{"question", "options", "answer", "response"}`` where
  ``response`` is ``<think>reasoning</think>\n<answer>X</answer>``. A
  ``reading_fraction`` are reading exercises (the question states the fact;
  :func:`jaxmed.synth.gazetteer.reading_exercises`); with a ``gazetteer``, a
  ``recall_fraction`` are recall questions about its invented countries
  (:func:`jaxmed.synth.gazetteer.recall_exercises`: restate the asked fact,
  recall it, name its option); the rest are ordering and counting puzzles.
  """
  rng = np.random.default_rng(seed)
  n_recall = int(round(recall_fraction * n)) if gazetteer is not None else 0
  n_read = int(round(reading_fraction * n))
  out = recall_exercises(gazetteer, n_recall, seed=seed) if n_recall else []
  out += reading_exercises(n_read, seed=seed)
  for _ in range(n - n_recall - n_read):
    if rng.integers(2) == 0:
      words = list(rng.choice(["apple", "river", "stone", "cloud", "maple", "tiger", "lemon"], 3, replace=False))
      first = sorted(words)[0]
      item = _mc(rng, f"Which word comes first alphabetically: {', '.join(words)}?", first,
                 [w for w in words if w != first] + ["zebra", "yarn"], 4)
      why = f"Sorted, the words start with {first}."
    else:
      word = str(rng.choice(["banana", "letter", "balloon", "coffee", "pepper"]))
      ch = str(rng.choice(sorted(set(word))))
      c = word.count(ch)
      item = _mc(rng, f"How many times does '{ch}' occur in '{word}'?", str(c),
                 [str(k) for k in range(0, 6) if k != c], 4)
      why = f"Counting '{ch}' in {word} gives {c}."
    gold = item["options"][item["answer"]]
    out.append({**item, "response": f"<think>{why} {gold} is option {item['answer']}.</think>\n"
                                    f"<answer>{item['answer']}</answer>"})
  order = rng.permutation(len(out))
  return [out[j] for j in order]


def mcqa_items(world: World, *, seed: int = 0) -> list[dict[str, Any]]:
  """Every 1-hop and 2-hop question of the world, each with a ``hops`` and ``kind`` field."""
  rng = np.random.default_rng(seed)
  w = world
  items = []
  for i, d in enumerate(w.diseases):
    n_opt = int(rng.choice([4, 5]))
    drug = w.drugs[w.drug_of[i]]
    one_hop = [
        ("drug", f"What is the first-line treatment of {d}?", drug, [x for x in w.drugs if x != drug]),
        ("organ", f"What is the target organ of {d}?", w.organs[w.organ_of[i]],
         [x for x in w.organs if x != w.organs[w.organ_of[i]]]),
        ("lab", f"What is the hallmark laboratory finding of {d}?", w.labs[w.lab_of[i]],
         [x for x in w.labs if x != w.labs[w.lab_of[i]]]),
    ]
    syms = _symptom_list(w, i)
    cls = w.drug_classes[w.class_of[w.drug_of[i]]]
    two_hop = [
        ("symptoms_class", f"What is the drug class of the first-line treatment of the disease whose classic "
                           f"signs are {syms}?", cls, [x for x in w.drug_classes if x != cls]),
        ("symptoms_drug", f"What is the first-line treatment of the disease whose classic signs are {syms}?",
         drug, [x for x in w.drugs if x != drug]),
    ]
    for hops, group in ((1, one_hop), (2, two_hop)):
      for kind, q, gold, distractors in group:
        k = min(n_opt, len(distractors) + 1)
        items.append({**_mc(rng, q, gold, distractors, k), "hops": hops, "kind": kind, "disease": i})
  return items


def split_items(items: list[dict[str, Any]], fractions=(0.7, 0.1, 0.2), *, seed: int = 0) -> tuple[list, ...]:
  """Disjoint train / validation / test splits of the items (shuffled)."""
  order = np.random.default_rng(seed).permutation(len(items))
  cuts = np.cumsum([int(round(f * len(items))) for f in fractions[:-1]])
  return tuple([items[j] for j in part] for part in np.split(order, cuts))
