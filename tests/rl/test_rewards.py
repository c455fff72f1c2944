"""Rule-based MCQA rewards: correct answers score, and each known hack scores 0."""

import pytest

from jaxmed import rl

EX = {"answer": "B", "options": {"A": "aspirin", "B": "heparin", "C": "warfarin", "D": "insulin"}}
GOOD = "<think>Troponin is high, so anticoagulate.</think>\n<answer>B</answer>"


def test_correct_answer_scores_on_every_reward():
  assert rl.accuracy_reward(GOOD, EX) == 1.0
  assert rl.format_reward(GOOD, EX) == 1.0
  assert rl.partial_reward(GOOD, EX) == 1.0
  assert rl.accuracy_reward("<think>x</think><answer>(B)</answer>", EX) == 1.0
  assert rl.accuracy_reward("<think>x</think><answer>C</answer>", EX) == 0.0
  assert rl.accuracy_reward("so \\boxed{B}", EX, tag="boxed") == 1.0


@pytest.mark.parametrize("hack", [
    "<think>x</think><answer></answer>",                         # empty answer
    "<think>x</think><answer>B</answer><answer>B</answer>",      # several answer tags
    "<answer>B</answer>C.\n<answer>",                            # a stray second opening tag
    "<think>The answer is B.</think><answer>heparin</answer>",   # letter only outside the tags
    "<think>x</think><answer>A B C D</answer>",                  # every letter listed
    "<think>x</think><answer>B or C</answer>",                   # two letters
    "B",                                                          # no tags at all
])
def test_hacks_score_zero_accuracy(hack):
  assert rl.accuracy_reward(hack, EX) == 0.0
  assert rl.partial_reward(hack, EX) == 0.0


@pytest.mark.parametrize("text,expected", [
    (GOOD, 1.0),
    ("  <think>a\nb</think>  <answer>B</answer>\n", 1.0),
    ("<answer>B</answer>", 0.0),                                  # no think block
    ("<think>x</think><answer>B</answer> trailing text", 0.0),
    ("<think>x</think><answer>B</answer><answer>C</answer>", 0.0),
    ("<think>x<think>y</think></think><answer>B</answer>", 0.0),
    ("<answer>B</answer><think>x</think>", 0.0),
])
def test_format_reward(text, expected):
  assert rl.format_reward(text, EX) == expected


def test_partial_reward_half_credit_for_letter_with_text():
  assert rl.partial_reward("<think>x</think><answer>B. heparin</answer>", EX) == 0.5
  assert rl.partial_reward("<think>x</think><answer>B</answer>", EX) == 1.0
  assert rl.partial_reward("<think>x</think><answer>C. warfarin</answer>", EX) == 0.0


def test_registry():
  assert rl.get_reward("accuracy") is rl.accuracy_reward
  with pytest.raises(ValueError, match="unknown reward 'length'"):
    rl.get_reward("length")


@pytest.mark.parametrize("text, expected", [
    ("<think>x</think><answer>B</answer>", "B"),
    ("<think>x</think><answer> C </answer>", "C"),
    ("<answer>D</answer> then <answer>A</answer>", "D"),          # the first match, as the official regex
    ("<think>x</think><answer>B.</answer>", None),                # only a lone capital between the tags
    ("<think>x</think><answer>b</answer>", None),
    ("The answer is B", None),
])
def test_evaluation_letter_is_medvlm_r1s_regex(text, expected):
  assert rl.evaluation_letter(text) == expected


@pytest.mark.parametrize("answer, expected", [
    ("B", 1.0), ("(B)", 1.0), ("B.", 1.0), ("heparin", 1.0), ("B. Heparin", 1.0), ("Heparin, as the passage says", 1.0),
    ("C", 0.0), ("warfarin", 0.0),
    ("C. heparin", 0.0),            # letter and text disagree
    ("heparin or warfarin", 0.0),   # two options' texts
    ("aspirin heparin warfarin insulin", 0.0),   # every option listed
    ("A rare anticoagulant: heparin", 1.0),      # a leading article is not the letter A
    ("", 0.0),
])
def test_option_accuracy_reads_letters_and_option_texts(answer, expected):
  assert rl.option_accuracy_reward(f"<think>x</think><answer>{answer}</answer>", EX) == expected
  assert rl.option_accuracy_reward(f"<think>x</think><answer>{answer}</answer><answer>B</answer>", EX) == 0.0


def test_option_accuracy_prefers_the_longer_of_nested_option_texts():
  ex = {"answer": "B", "options": {"A": "lung", "B": "lung cancer", "C": "liver"}}
  assert rl.named_options("lung cancer", ex["options"]) == {"B"}
  assert rl.option_accuracy_reward("<answer>lung cancer</answer>", ex) == 1.0
  assert rl.option_accuracy_reward("<answer>lung</answer>", ex) == 0.0


@pytest.mark.parametrize("completion, official, strict", [
    ("<think>x</think> <answer>B</answer>", 1.0, 1.0),
    ("<think>x</think> <answer>B.</answer>", 0.5, 1.0),           # the gold letter with extra text
    ("<think>x</think> <answer>B. heparin</answer>", 0.0, 1.0),   # the capitals of HEPARIN count as letters
    ("<think>x</think> <answer>b</answer>", 1.0, 0.0),            # upper-cased first
    ("<think>x</think> <ANSWER>B</ANSWER>", 1.0, 0.0),            # tags in any case
    ("<think>x</think> <answer>B</answer><answer>C</answer>", 1.0, 0.0),   # only the first block is read
    ("<think>x</think> <answer>C</answer>", 0.0, 0.0),
    ("<think>x</think> <answer>B or C</answer>", 0.0, 0.0),
])
def test_medvlm_r1_official_accuracy_against_our_strict_one(completion, official, strict):
  """The official reward and our anti-hacking ``accuracy`` on the same completions."""
  assert rl.medvlm_r1_accuracy_reward(completion, EX) == official
  assert rl.accuracy_reward(completion, EX) == strict


@pytest.mark.parametrize("completion, expected", [
    ("<think>a\nb</think>\n<answer>B</answer>", 1.0),
    ("<think>x</think><answer>B</answer> trailing", 0.0),   # a full match: nothing after the answer
    ("  <think>x</think><answer>B</answer>", 0.0),          # nor before the think block
    ("<think>x</think>", 0.0),
])
def test_medvlm_r1_official_format(completion, expected):
  assert rl.medvlm_r1_format_reward(completion, EX) == expected
