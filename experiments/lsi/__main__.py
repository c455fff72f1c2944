"""python -m experiments.lsi --config=experiments.lsi/config.py:demo --workdir=runs/lsi"""

import os

from experiments.lsi import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
