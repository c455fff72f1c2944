"""A seeded, non-medical general-knowledge world (invented countries) for a base model's instruction data.

A real base model arrives at RL knowing how to answer a question from what
it read: it restates what is asked as a fact, recalls the fact, and maps it
to an option. AlphaMed's experiment needs that general skill without any
medical QA, so the synthetic base model gets it from this world instead:

* :func:`make_gazetteer`: countries, each with one value per relation
  (``"capital"``, ``"official language"``, ...; :data:`RELATIONS`);
* :func:`gazetteer_corpus`: prose stating every fact in three wordings, the
  first of which is always ``"The {relation} of {country} is {value}."``;
* :func:`recall_exercises`: multiple-choice questions
  ``"What is the {relation} of {country}?"`` with the worked response
  ``<think>The {relation} of {country} is {value}. {value} is option X.</think>
  <answer>X</answer>``, plus 2-hop questions (``"... of the country whose
  {relation} is {value}?"``) whose response states the reverse fact first;
* :func:`reading_exercises`: the same question shape about a fact given in the
  question itself (in another wording), with an open-ended relation (``"grand harbour"``,
  ``"oldest bridge"``, ...) and a random subject, so what is learned is to
  *copy* the asked relation and subject into the restatement, whatever they
  are, rather than a list of relation names.

The names use syllables disjoint from :mod:`jaxmed.synth.medworld`'s, so no
medical entity ever appears here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

_SYLLABLES = ("ba", "ne", "go", "wu", "fa", "ri", "sto", "ke", "du", "yel", "pim", "so", "har", "wen", "bo", "ti",
              "gu", "nes", "fo", "lu", "ab", "zen", "ped", "hu", "kri", "mun", "ve", "ga", "dor", "ise")

# relation phrase -> how its values are named (the invented word is substituted for {w})
RELATIONS = {
    "capital": "{W}burg", "official language": "{W}ish", "currency": "{w} crown", "main export": "{w}berry",
    "highest mountain": "Mount {W}", "longest river": "{W} river", "national dish": "{w} stew",
    "national animal": "{w} owl", "founder": "King {W}", "national sport": "{w}ball",
    "oldest university": "{W} College", "largest lake": "Lake {W}",
}


_ADJECTIVES = ("grand", "northern", "oldest", "busiest", "tallest", "sacred", "royal", "famous", "ancient",
               "central", "favourite", "eastern", "western", "southern", "main", "smallest", "newest")
_NOUNS = ("harbour", "bridge", "tower", "festival", "poet", "bird", "flower", "tree", "song", "market", "castle",
          "temple", "garden", "road", "ship", "statue", "library", "forest", "island", "valley")


@dataclasses.dataclass(frozen=True)
class Gazetteer:
  countries: tuple[str, ...]
  values: dict[str, tuple[str, ...]]   # relation -> value per country (distinct within a relation)

  def fact(self, relation: str, country: int) -> str:
    return self.values[relation][country]


def _word(rng, used) -> str:
  while True:
    w = "".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4)))
    if w not in used:
      used.add(w)
      return w


def make_gazetteer(num_countries: int = 40, *, seed: int = 0) -> Gazetteer:
  rng = np.random.default_rng(seed + 1_000)
  used: set[str] = set()
  countries = tuple(_word(rng, used).capitalize() + "ia" for _ in range(num_countries))
  values = {}
  for rel, pattern in RELATIONS.items():
    values[rel] = tuple(pattern.format(W=(w := _word(rng, used)).capitalize(), w=w) for _ in range(num_countries))
  return Gazetteer(countries, values)


def gazetteer_corpus(g: Gazetteer, *, seed: int = 0) -> list[str]:
  """Every fact in three wordings (shuffled); the first wording is the one the exercises restate."""
  templates = ("The {r} of {x} is {v}.", "{v} is the {r} of {x}.", "{x} has {v} as its {r}.")
  out = [t.format(r=rel, x=x, v=g.fact(rel, i)) for rel in RELATIONS for i, x in enumerate(g.countries)
         for t in templates]
  out = [s[0].upper() + s[1:] for s in out]
  np.random.default_rng(seed).shuffle(out)
  return out


def lettered_options(rng, gold: str, distractors, num_options: int) -> tuple[dict[str, str], str]:
  """``num_options`` options ``{"A": ..}`` with ``gold`` at a uniform position among sampled distractors."""
  letters = "ABCDEF"[:num_options]
  pos = int(rng.integers(num_options))
  picks = [str(x) for x in rng.choice(distractors, num_options - 1, replace=False)]
  opts = picks[:pos] + [str(gold)] + picks[pos:]
  return dict(zip(letters, opts)), letters[pos]


def recall_exercises(g: Gazetteer, n: int, *, two_hop_fraction: float = 0.25, seed: int = 0) -> list[dict]:
  """``n`` exercises ``{"question", "options", "answer", "response"}`` about the gazetteer's facts."""
  rng = np.random.default_rng(seed)
  rels = list(RELATIONS)
  out: list[dict[str, Any]] = []
  for _ in range(n):
    i = int(rng.integers(len(g.countries)))
    x, rel = g.countries[i], rels[rng.integers(len(rels))]
    gold = g.fact(rel, i)
    options, letter = lettered_options(rng, gold, [v for v in g.values[rel] if v != gold],
                                       int(rng.choice([4, 5])))
    if rng.random() < two_hop_fraction:
      via = rels[rng.integers(len(rels))]
      while via == rel:
        via = rels[rng.integers(len(rels))]
      key = g.fact(via, i)
      question = f"What is the {rel} of the country whose {via} is {key}?"
      think = f"{key} is the {via} of {x}. The {rel} of {x} is {gold}."
    else:
      question = f"What is the {rel} of {x}?"
      think = f"The {rel} of {x} is {gold}."
    out.append({"question": question, "options": options, "answer": letter,
                "response": f"<think>{think} {gold} is option {letter}.</think>\n<answer>{letter}</answer>"})
  return out


def reading_exercises(n: int, *, seed: int = 0) -> list[dict]:
  """``n`` exercises whose question states the fact it asks about (an open-ended relation, random names)."""
  rng = np.random.default_rng(seed + 2_000)
  out: list[dict[str, Any]] = []
  for _ in range(n):
    rel = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    used: set[str] = set()
    subject = _word(rng, used).capitalize() + str(rng.choice(["ton", "vale", "shire", "mark"]))
    k = int(rng.choice([4, 5]))
    gold, *distractors = [_word(rng, used).capitalize() for _ in range(k)]
    options, letter = lettered_options(rng, gold, distractors, k)
    # the passage words the fact differently from the restatement, so the restated "The {rel} of {subject}"
    # has to be copied from the question, not from the passage
    given = (f"{gold} is the {rel} of {subject}.", f"{subject} has {gold} as its {rel}.")[int(rng.integers(2))]
    question = f"{given} What is the {rel} of {subject}?"
    out.append({"question": question, "options": options, "answer": letter,
                "response": f"<think>The {rel} of {subject} is {gold}. {gold} is option {letter}.</think>\n"
                            f"<answer>{letter}</answer>"})
  return out
