"""python -m experiments.medvlm_r1 --config=experiments/medvlm_r1/config.py:demo --workdir=runs/medvlm_r1"""

import os

from experiments.medvlm_r1 import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
