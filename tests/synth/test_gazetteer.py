"""The non-medical gazetteer: seeded facts, prose that states them, recall exercises that are correct."""

import re

from jaxmed.synth import gazetteer as G
from jaxmed.synth import medworld as M


def test_seeded_and_values_distinct_within_each_relation():
  a, b = G.make_gazetteer(20, seed=1), G.make_gazetteer(20, seed=1)
  assert a == b and a != G.make_gazetteer(20, seed=2)
  assert len(set(a.countries)) == 20
  for rel in G.RELATIONS:
    assert len(set(a.values[rel])) == 20


def test_prose_states_every_fact_in_the_restated_form():
  g = G.make_gazetteer(10, seed=0)
  corpus = set(G.gazetteer_corpus(g))
  assert len(corpus) == 3 * 10 * len(G.RELATIONS)
  for rel in G.RELATIONS:
    for i, x in enumerate(g.countries):
      assert f"The {rel} of {x} is {g.fact(rel, i)}." in corpus
      reverse = f"{g.fact(rel, i)} is the {rel} of {x}."
      assert reverse[0].upper() + reverse[1:] in corpus
  assert not any("?" in s for s in corpus)


def test_exercises_are_correct_and_their_reasoning_is_stated_in_the_prose():
  g = G.make_gazetteer(12, seed=0)
  prose = " ".join(G.gazetteer_corpus(g))
  items = G.recall_exercises(g, 200, seed=3)
  assert any("whose" in it["question"] for it in items) and any("whose" not in it["question"] for it in items)
  for it in items:
    think = re.fullmatch(r"<think>(.*)</think>\n<answer>([A-E])</answer>", it["response"]).group(1)
    gold = it["options"][it["answer"]]
    assert think.endswith(f"{gold} is option {it['answer']}.")
    assert len(set(it["options"].values())) == len(it["options"])
    for sentence in re.findall(r"[^.]+\.", think)[:-1]:    # every recalled fact is in the prose
      s = sentence.strip()
      assert s[0].upper() + s[1:] in prose, s
    rel = re.match(r"What is the (.+?) of ", it["question"]).group(1)
    assert all(v in G.make_gazetteer(12, seed=0).values[rel] for v in it["options"].values())


def test_no_medical_entity_in_the_instruction_corpus():
  w = M.make_world(40, seed=0)
  exercises = M.instruction_corpus(300, seed=0, gazetteer=G.make_gazetteer(40, seed=0))
  text = " ".join(str(e) for e in exercises)
  for name in set(w.diseases) | set(w.drugs) | set(w.organs) | set(w.symptoms) | set(w.labs):
    assert name not in text
  assert sum("option" in e["response"] for e in exercises) == 300


def test_reading_exercises_restate_the_fact_their_question_gives():
  items = G.reading_exercises(100, seed=0)
  assert len({re.search(r"What is the (.+?) of ", it["question"]).group(1) for it in items}) > 50  # open-ended
  for it in items:
    given, asked = it["question"].split(" What is the ")
    rel, subject = re.fullmatch(r"(.+) of (.+)\?", asked).groups()
    gold = it["options"][it["answer"]]
    assert given in (f"{gold} is the {rel} of {subject}.", f"{subject} has {gold} as its {rel}.")
    assert it["response"].startswith(f"<think>The {rel} of {subject} is {gold}. {gold} is option ")
