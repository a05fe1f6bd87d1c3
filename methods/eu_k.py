"""`eu-k` (EU-k, exact unlearning of the last k layers): reset the last k stages to the
original model's initial weights and retrain only them on the retain set.

Source: Goel et al., "Towards Adversarial Evaluation of Machine Unlearning" (CF-k and
EU-k), as run in meghdadk/SCRUB (commit 98ffb11), `small_scale_unlearning.ipynb` (cell
90, "Exact Unlearning k layers"): copy `model_initial`'s weights (the initialisation the
original model was trained from, cell 16) into the last block, then `fk_fientune` as
CF-k does.

Algorithm: the parameters of the chosen stages (`cf-k`'s rule: by default the last
stage before the output layer, `layer4` on ResNet-18, as the notebook's ResNet branch,
which resets all of `layer4`'s weights and keeps `linear` as trained and frozen) get the
values of `task.initial_model()` (BatchNorm running statistics are kept, as the notebook
copies only weights and biases); then exactly `cf-k`'s fine-tuning of those stages
(eval mode, plain SGD, CE + penalty / 2 * ||theta - theta_start||^2 with theta_start
the reset weights, batch 128, no augmentation) for as many epochs as the original was
trained (`euk_epochs = training_epochs`, 30 in the notebook; `epochs = None` takes the
scenario recipe's). The rate is the notebook's: `euk_lr` 0.01 up to epoch 10, then, as
repdistiller's `adjust_learning_rate` sets it, SCRUB's `sgda_learning_rate` (5e-4, cell
30) times 0.1 per milestone passed: 5e-5 in epochs 11-15, 5e-6 in 16-20, 5e-7 from 21
(`decay_base_lr`; set to `lr` it decays from EU-k's own rate, 1e-3, 1e-4, 1e-5, which
is what mu-bench did before and what a reader of the paper alone would expect).

Defaults: k 1 without the head, lr 0.01, epochs = the recipe's, milestones (10, 15,
20), decay base 5e-4, batch 128, penalty = the recipe's weight decay.

Presets: as for `cf-k`, the repository's other EU-k runs (`MIA_experiments.ipynb` cell
21, `resnet50_cifar100.ipynb` cell 22: lr 0.01, batch 64, epochs = training_epochs)
are on 100 examples of one class, not CIFAR-10 10% random, CIFAR-10 class-wise or
CIFAR-100 10% random, and Goel et al. give no values for those: they run the defaults.

Deviations: the stages of any architecture (see `cf-k`); on mu-bench's ResNet-18 the
reset covers `layer4`'s shortcut BatchNorm too (the SCRUB ResNet's shortcut has none).
Stops early at the budget.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from mu_bench.api import UnlearnTask, stage_parameters

from .cf_k import CFk, chosen_stages


class EUk(CFk):
    """Reset the last k stages to their initial weights and retrain them (Goel et al.'s EU-k)."""

    # digits: fair tuning (`mu-bench tune eu-k --param with_head=true --trials 20`, avg_gap
    # against gold models of another draw: class 4, or another 10%), the studies in
    # mu_bench/presets/; k counts stages from the output layer.
    presets: ClassVar[dict] = {
        "digits-class": {"with_head": True, "k": 1, "lr": 0.1895000209322218},
        "digits-random": {"with_head": True, "k": 1, "lr": 0.19578897201213002},
    }
    preset_sources: ClassVar[dict[str, str]] = {
        "digits-class": "eu-k-digits-class3",
        "digits-random": "eu-k-digits-random10",
    }
    # `mu-bench tune`: the stages and rate of the earlier sweep (with `--param with_head=true`).
    search_space: ClassVar[dict[str, str]] = {"k": "int:1:2", "lr": "log:0.01:1"}

    epochs: int | None = Field(None, ge=1)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.model
        names = chosen_stages(model, self.k, self.with_head)
        initial = stage_parameters(task.initial_model(), names)
        with torch.no_grad():
            for name, p in stage_parameters(model, names).items():
                p.copy_(initial[name])
        return self.finetune_last_stages(task, model)
