"""python -m experiments.arc --config=experiments/arc/config.py:demo --workdir=runs/arc"""

import os

from experiments.arc import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
