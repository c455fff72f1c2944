import numpy as np
import pytest

from jaxmed.synth import medcases, medworld


@pytest.mark.parametrize("facts_per_passage", [1, 2, 4])
def test_every_case_question_is_answerable_from_its_own_text(facts_per_passage):
  """The reading oracle (the demo's ceiling) parses only the question and options and finds every answer."""
  world = medworld.make_world(20, seed=3)
  items = medcases.case_items(world, 60, seed=3, facts_per_passage=facts_per_passage)
  assert {it["kind"] for it in items} == set(medcases.KINDS)
  assert all(medcases.oracle_answer(it) == it["answer"] for it in items)


def test_the_oracle_needs_the_patients_entry_and_options_come_from_the_passage_first():
  world = medworld.make_world(20, seed=4)
  items = medcases.case_items(world, 30, seed=4, facts_per_passage=3)
  for it in items:
    reference = it["question"].split("\n\nCase: ")[0]
    named = [v for k, v in it["options"].items() if k != it["answer"] and v in reference]
    assert len(named) >= 1   # a distractor that the passage names: finding a passage entity is not enough
  it = items[0]
  gold = world.diseases[it["disease"]]
  entries = it["question"].split("\n\nCase: ")[0].removeprefix("Reference: ").split(". ")
  kept = [e for e in entries if not e.startswith(gold)]
  broken = dict(it, question="Reference: " + ". ".join(kept) + "\n\nCase: " + it["question"].split("\n\nCase: ")[1])
  with pytest.raises(ValueError, match="entries"):
    medcases.oracle_answer(broken)


def test_case_items_are_reproducible_and_letters_are_balanced():
  world = medworld.make_world(20, seed=5)
  a = medcases.case_items(world, 200, seed=5)
  assert a == medcases.case_items(world, 200, seed=5)
  counts = np.unique([it["answer"] for it in a], return_counts=True)[1]
  assert counts.min() >= 10   # no letter is (almost) never right, so a constant letter cannot score well
