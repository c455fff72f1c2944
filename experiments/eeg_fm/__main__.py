"""python -m experiments.eeg_fm --config=experiments/eeg_fm/config.py:demo --workdir=runs/eeg_fm"""

import os

from experiments.eeg_fm import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
