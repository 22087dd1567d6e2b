"""Training: the paper's recipe as configs, trustworthy runs, readable reports.

``eventprop train`` / ``eval`` / ``crossval`` are thin wrappers around this package:

- :mod:`~eventprop.train.config`: the schema of a run (YAML + ``--set`` overrides);
- :mod:`~eventprop.train.data`: train / validation / test sets from the config;
- :mod:`~eventprop.train.model`: network, loss, regulariser, optimiser from the config;
- :mod:`~eventprop.train.loop`: the epochs, checkpoints, resume, failure handling;
- :mod:`~eventprop.train.schedule`, :mod:`~eventprop.train.rewire`: the paper's EMA
  learning-rate rule and the lifting of silent neurons;
- :mod:`~eventprop.train.metrics`, :mod:`~eventprop.train.plots`,
  :mod:`~eventprop.train.runs`, :mod:`~eventprop.train.checkpoint`: what a run leaves behind;
- :mod:`~eventprop.train.crossval`: leave-one-speaker-out cross-validation.
"""

from eventprop.train.config import (
    ConfigError,
    ExperimentConfig,
    dump_config,
    list_builtin_configs,
    load_config,
)
from eventprop.train.crossval import CrossValResult, crossval
from eventprop.train.evaluate import EvalResult, evaluate
from eventprop.train.loop import RunResult, Trainer, TrainingDiverged, resume, train
from eventprop.train.runeval import evaluate_run
from eventprop.train.runs import RunDirError, RunPaths

__all__ = [
    "ConfigError",
    "CrossValResult",
    "EvalResult",
    "ExperimentConfig",
    "RunDirError",
    "RunPaths",
    "RunResult",
    "Trainer",
    "TrainingDiverged",
    "crossval",
    "dump_config",
    "evaluate",
    "evaluate_run",
    "list_builtin_configs",
    "load_config",
    "resume",
    "train",
]
