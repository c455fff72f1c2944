"""The synthetic medical world: seeded, facts consistent between corpus and questions, splits disjoint."""

import collections
import re

import numpy as np

from jaxmed.synth import medworld as M


def test_seeded_and_symptom_triples_identify_diseases():
  a, b = M.make_world(30, seed=2), M.make_world(30, seed=2)
  assert a == b and a != M.make_world(30, seed=3)
  assert len(set(a.symptoms_of)) == 30
  assert len(set(a.diseases)) == 30 and len(set(a.drugs)) == 30


def test_corpus_states_facts_without_questions_and_instructions_are_not_medical():
  w = M.make_world(20, seed=0)
  corpus = M.textbook_corpus(w, paraphrases=2)
  text = " ".join(corpus)
  for i, d in enumerate(w.diseases):
    assert any(d in s and w.drugs[w.drug_of[i]] in s for s in corpus)
  assert "?" not in text and "<answer>" not in text
  exercises = M.instruction_corpus(50, seed=0)
  assert all(e["response"].endswith(f"<answer>{e['answer']}</answer>") and "<think>" in e["response"]
             for e in exercises)
  names = set(w.diseases) | set(w.drugs) | set(w.organs)
  assert not any(n in str(e) for n in names for e in exercises)


def test_items_are_correct_uniform_and_split_disjointly():
  w = M.make_world(200, seed=1)
  items = M.mcqa_items(w, seed=1)
  assert len(items) == 5 * 200
  assert {len(it["options"]) for it in items} == {4, 5}
  for it in items[:50]:
    gold = it["options"][it["answer"]]
    i = it["disease"]
    expected = {"drug": w.drugs[w.drug_of[i]], "organ": w.organs[w.organ_of[i]], "lab": w.labs[w.lab_of[i]],
                "symptoms_class": w.drug_classes[w.class_of[w.drug_of[i]]],
                "symptoms_drug": w.drugs[w.drug_of[i]]}[it["kind"]]
    assert gold == expected and len(set(it["options"].values())) == len(it["options"])
  counts = collections.Counter(it["answer"] for it in items if len(it["options"]) == 4)
  freq = np.asarray([counts[k] for k in "ABCD"]) / sum(counts.values())
  assert np.all(np.abs(freq - 0.25) < 0.06), freq
  train, val, test = M.split_items(items, seed=0)
  keys = [{(it["question"], tuple(it["options"].values())) for it in s} for s in (train, val, test)]
  assert sum(map(len, keys)) == len(items) and not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


def test_one_hop_questions_ask_what_the_textbook_states():
  w = M.make_world(20, seed=0)
  corpus = set(M.textbook_corpus(w, paraphrases=3))
  for it in M.mcqa_items(w, seed=0):
    gold = it["options"][it["answer"]]
    if it["hops"] == 1:
      rel, d = re.fullmatch(r"What is the (.+) of (.+)\?", it["question"]).groups()
      assert f"The {rel} of {d} is {gold}." in corpus
    else:   # the reverse statement that identifies the disease from its signs is stated too
      signs = it["question"].split("classic signs are ")[1].rstrip("?")
      assert f"{signs[0].upper()}{signs[1:]} are the classic signs of {w.diseases[it['disease']]}." in corpus
