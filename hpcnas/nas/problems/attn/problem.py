"""Attn-like NAS problems (binary classification, objective ``val_auc``).

``Problem`` -- synthetic data (3,000 rows x 40 features), 4 layers, batch size and learning
rate searched, 10 epochs. ``TinyProblem`` -- 600 rows, 2 layers, 2 epochs (tests and demos).
Set ``HPCNAS_ATTN_DATA`` to the CANDLE ``top_21_1fold_001.h5`` to train on the real data.
"""
from __future__ import annotations

from hpcnas.problem.na_problem import NaProblem

_LOAD = "hpcnas.nas.problems.attn.data.load_data"
_SPACE = "hpcnas.nas.problems.attn.space.create_search_space"

Problem = NaProblem(seed=2021)
Problem.load_data(_LOAD, n_samples=3000)
Problem.search_space(_SPACE, num_layers=4, num_skips=2)
Problem.hyperparameters(
    batch_size=Problem.add_hyperparameter((32, 512, "log-uniform"), "batch_size"),
    learning_rate=Problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "learning_rate"),
    optimizer="adam",
    num_epochs=10,
)
Problem.loss("binary_crossentropy")
Problem.metrics(["acc", "auc"])
Problem.objective("val_auc__max")

TinyProblem = NaProblem(seed=2021)
TinyProblem.load_data(_LOAD, n_samples=600, n_features=12, n_informative=4)
TinyProblem.search_space(_SPACE, num_layers=2, num_skips=1, units=[8, 16], dropouts=[0.1])
TinyProblem.hyperparameters(
    batch_size=TinyProblem.add_hyperparameter((16, 128, "log-uniform"), "batch_size"),
    learning_rate=TinyProblem.add_hyperparameter((1e-3, 5e-2, "log-uniform"), "learning_rate"),
    optimizer="adam",
    num_epochs=2,
    num_threads=1,
)
TinyProblem.loss("binary_crossentropy")
TinyProblem.metrics(["acc", "auc"])
TinyProblem.objective("val_auc__max")
