"""The names of the files in a run folder and a zoo entry, defined once.

A basic module (it imports nothing) so that every layer can name them: the zoo
and ``model.pt`` reader (networks), the run folder (:mod:`hinas_lib.runs`), the
engines, the front ends and the scripts.
"""

SEARCH_STATE = "checkpoint.pt"          # the resumable state of a search
TRAIN_STATE = "train_checkpoint.pt"     # ... and of a retraining
MODEL_FILE = "model.pt"                 # a trained network (config + genotype + weights)
GENOTYPE_FILE = "genotype.json"         # a search's result (a training's genotype, written when it starts)
BEST_GENOTYPE_FILE = "genotype_best.json"
CONFIG_FILE = "config.yaml"
LOG_FILE = "log.jsonl"                  # one JSON record per epoch
FIGURES_DIR = "figures"
LOCK_NAME = ".hinas.lock"               # present while a run uses the folder

STATE_FILES = (SEARCH_STATE, TRAIN_STATE)


def state_file(kind: str) -> str:
    """The resumable state of a ``search`` or ``train`` run."""
    return SEARCH_STATE if kind == "search" else TRAIN_STATE


__all__ = ["SEARCH_STATE", "TRAIN_STATE", "MODEL_FILE", "GENOTYPE_FILE", "BEST_GENOTYPE_FILE", "CONFIG_FILE",
           "LOG_FILE", "FIGURES_DIR", "LOCK_NAME", "STATE_FILES", "state_file"]
