"""The public API for method plugins: import from here, and only from here.

Everything a method may use is re-exported below (`__all__`); every other module of
`mu_bench` is internal and may change between versions. A method is a `Method`
subclass (typed hyperparameters as fields, `unlearn(task: UnlearnTask) -> nn.Module`,
optionally `train(task: TrainTask)`); its task holds `Split`s of data and a `Budget`.
The toolkit is what the built-in methods share and a third party may reuse:

- training: `TrainConfig` (the scenario's recipe), `fit`, `TrainingRun` (one optimizer and
  schedule across several `fit` calls, resumable), `predict_logits`, `make_optimizer`;
- models: `ModelSpec`, `build_model`, `ensemble_spec`;
- layer stages of any architecture: `stages`, `last_stages`, `stage_parameters`,
  `NORM_TYPES`;
- the true Fisher diagonal: `diagonal_fisher`;
- per-sample gradients: `per_sample_grads`, `flat_grad`, `chunk_size`, `n_params`;
- the SGD baselines' pieces: `run_pass`, `WeightMask`, `MaskMode`, `step_decay`,
  `random_labels`;
- SCRUB's distillation: `distill_kl`, `scrub_epoch`;
- seeds: `derive_seed` (independent named streams under one seed).

The built-in methods import only from this module, as a third party would.
"""

from .budget import Budget
from .data.split import Split
from .method import Method, Reads, Scope
from .models.registry import build_model
from .models.spec import ModelSpec, ensemble_spec
from .seeding import derive_seed
from .task import DataAccessError, TrainTask, UnlearnTask
from .toolkit.distill import distill_kl, scrub_epoch
from .toolkit.fisher import diagonal_fisher
from .toolkit.grads import chunk_size, flat_grad, n_params, per_sample_grads
from .toolkit.layers import NORM_TYPES, last_stages, stage_parameters, stages
from .toolkit.recipe import TrainConfig
from .toolkit.sgd import MaskMode, WeightMask, random_labels, run_pass, step_decay
from .toolkit.training import TrainingRun, fit, make_optimizer, predict_logits

__all__ = [
    "NORM_TYPES",
    "Budget",
    "DataAccessError",
    "MaskMode",
    "Method",
    "ModelSpec",
    "Reads",
    "Scope",
    "Split",
    "TrainConfig",
    "TrainTask",
    "TrainingRun",
    "UnlearnTask",
    "WeightMask",
    "build_model",
    "chunk_size",
    "derive_seed",
    "diagonal_fisher",
    "distill_kl",
    "ensemble_spec",
    "fit",
    "flat_grad",
    "last_stages",
    "make_optimizer",
    "n_params",
    "per_sample_grads",
    "predict_logits",
    "random_labels",
    "run_pass",
    "scrub_epoch",
    "stage_parameters",
    "stages",
    "step_decay",
]
