"""Combo-like NAS problems (AgEBO setting: architecture + training hyper-parameters).

``Problem`` -- synthetic data (4,000 rows), 3 trunk layers, batch size / learning rate /
ranks searched, 10 epochs, objective ``val_r2__last``.
``TinyProblem`` -- 600 rows, 2 trunk layers, 2 epochs: tests and demos (seconds per eval).
Set ``HPCNAS_COMBO_DATA`` to a directory of CANDLE files to train on the real data.
"""
from __future__ import annotations

from hpcnas.problem.na_problem import NaProblem

_LOAD = "hpcnas.nas.problems.combo.data.load_data"
_SPACE = "hpcnas.nas.problems.combo.space.create_search_space"

Problem = NaProblem(seed=2020)
Problem.load_data(_LOAD, n_samples=4000)
Problem.search_space(_SPACE, num_layers=3, sub_layers=1, num_skips=2, units=[16, 32, 64, 128])
Problem.hyperparameters(
    batch_size=Problem.add_hyperparameter((16, 512, "log-uniform"), "batch_size"),
    learning_rate=Problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "learning_rate"),
    optimizer=Problem.add_hyperparameter(["adam", "rmsprop", "sgd"], "optimizer"),
    num_ranks=Problem.add_hyperparameter([1, 2], "num_ranks", ordinal=True),
    num_epochs=10,
    lsr_batch_size=True,
    lsr_learning_rate=True,
    warmup_lr=True,
    warmup_epochs=1,
)
Problem.loss("mse")
Problem.metrics(["r2", "mae"])
Problem.objective("val_r2__last")

TinyProblem = NaProblem(seed=2020)
TinyProblem.load_data(_LOAD, n_samples=600, n_cell_features=8, n_drug_features=10, n_cells=12, n_drugs=16)
TinyProblem.search_space(_SPACE, num_layers=2, sub_layers=1, num_skips=1, units=[8, 16])
TinyProblem.hyperparameters(
    batch_size=TinyProblem.add_hyperparameter((16, 128, "log-uniform"), "batch_size"),
    learning_rate=TinyProblem.add_hyperparameter((1e-3, 5e-2, "log-uniform"), "learning_rate"),
    optimizer="adam",
    num_epochs=2,
    num_threads=1,
)
TinyProblem.loss("mse")
TinyProblem.metrics(["r2"])
TinyProblem.objective("val_r2__last")

#: the benchmark setting (benchmarks/agebo_vs_age.py): 2,000 rows, 3 trunk layers, 4 epochs,
#: batch size / learning rate / optimizer searched -- what AgEBO tunes and AgE keeps at defaults
BenchProblem = NaProblem(seed=2020)
BenchProblem.load_data(_LOAD, n_samples=2000)
BenchProblem.search_space(_SPACE, num_layers=3, sub_layers=1, num_skips=2, units=[16, 32, 64])
BenchProblem.hyperparameters(
    batch_size=BenchProblem.add_hyperparameter((16, 512, "log-uniform"), "batch_size"),
    learning_rate=BenchProblem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "learning_rate"),
    optimizer=BenchProblem.add_hyperparameter(["adam", "rmsprop", "sgd"], "optimizer"),
    num_epochs=4,
    num_threads=1,
)
BenchProblem.loss("mse")
BenchProblem.metrics(["r2"])
BenchProblem.objective("val_r2__last")

#: ``TinyProblem`` trained data-parallel: every configuration asks for 2 ranks (Horovod / Balsam mpi
#: mode); one epoch (4-15 all-reduced steps per rank): a 2-rank evaluation costs mostly the start of
#: TensorFlow and Horovod in each rank, and the e2e test runs 30 of them one after the other
TinyMpiProblem = NaProblem(seed=2020)
TinyMpiProblem.load_data(_LOAD, n_samples=600, n_cell_features=8, n_drug_features=10, n_cells=12, n_drugs=16)
TinyMpiProblem.search_space(_SPACE, num_layers=2, sub_layers=1, num_skips=1, units=[8, 16])
TinyMpiProblem.hyperparameters(
    batch_size=TinyMpiProblem.add_hyperparameter((16, 64, "log-uniform"), "batch_size"),
    learning_rate=TinyMpiProblem.add_hyperparameter((1e-3, 5e-2, "log-uniform"), "learning_rate"),
    optimizer="adam",
    num_epochs=1,
    num_ranks=2,
    num_threads=1,
    lsr_batch_size=True,
    lsr_learning_rate=True,
)
TinyMpiProblem.loss("mse")
TinyMpiProblem.metrics(["r2"])
TinyMpiProblem.objective("val_r2__last")
