"""NaProblem: building, HpProblem-like view, JSON round trip; shipped problems' data."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.problems.attn import data as attn_data
from hpcnas.nas.problems.combo import data as combo_data
from hpcnas.nas.problems.combo.problem import Problem as Combo
from hpcnas.nas.problems.combo.problem import TinyProblem
from hpcnas.problem import NaProblem
from hpcnas.problem.na_problem import parse_objective, resolve_problem


def test_shipped_problem_has_reference_and_flat_space():
    TinyProblem.check()
    assert TinyProblem.reference == "hpcnas.nas.problems.combo.problem.TinyProblem"
    sizes = TinyProblem.arch_space.choice_sizes
    names = list(TinyProblem.space.keys())
    assert names == [f"arch_{i}" for i in range(len(sizes))] + ["batch_size", "learning_rate"]
    assert TinyProblem.hyperparameter_names == ["arch_seq", "batch_size", "learning_rate"]


def test_make_sample_validate_configs():
    configs = Combo.sample(5, rng=3)
    assert configs == Combo.sample(5, rng=3)
    for c in configs:
        assert set(c) == {"arch_seq", "batch_size", "learning_rate", "optimizer", "num_ranks", "problem"}
        assert Combo.validate_config(c) == c
        json.dumps(c)
    bad = dict(configs[0], arch_seq=[99] * len(configs[0]["arch_seq"]))
    with pytest.raises(HpcnasError, match="out of range"):
        Combo.validate_config(bad)
    with pytest.raises(HpcnasError, match="unknown keys"):
        Combo.validate_config(dict(configs[0], units=3))
    with pytest.raises(HpcnasError, match="no 'arch_seq'"):
        Combo.validate_config({"batch_size": 32})
    assert Combo.from_flat(Combo.to_flat(configs[0])) == configs[0]


def test_fixed_resources_travel_in_configs_and_precedence():
    p = NaProblem(reference="x.y.P")
    p.load_data(combo_data.load_data, n_samples=50)
    p.search_space("hpcnas.nas.problems.combo.space.create_search_space", num_layers=1)
    p.hyperparameters(num_ranks=2, learning_rate=p.add_hyperparameter((1e-3, 1e-1, "log-uniform"), "learning_rate"),
                      batch_size=16)
    config = p.make_config([0] * p.arch_space.num_choices, {"learning_rate": 0.01})
    assert config["num_ranks"] == 2 and config["problem"] == "x.y.P"
    hps = p.hyperparameters_of(config)
    assert (hps["batch_size"], hps["learning_rate"], hps["num_ranks"], hps["optimizer"]) == (16, 0.01, 2, "adam")


def test_json_round_trip_rebuilds_the_same_problem():
    copy = NaProblem.from_json(Combo.to_json())
    assert copy.fingerprint() == Combo.fingerprint()
    assert copy.arch_space.choice_sizes == Combo.arch_space.choice_sizes
    assert copy.objective_spec == "val_r2__last" and copy.metric_names == ["r2", "mae"]
    assert resolve_problem(Combo.to_dict()).fingerprint() == Combo.fingerprint()
    assert resolve_problem("hpcnas.nas.problems.combo.problem.Problem") is Combo


def test_unimportable_problem_carries_its_json():
    p = NaProblem()  # defined in this test module's function: no module attribute points to it
    p.load_data("hpcnas.nas.problems.combo.data.load_data", n_samples=40)
    p.search_space("hpcnas.nas.problems.combo.space.create_search_space", num_layers=1)
    config = p.sample(1, 0)[0]
    assert isinstance(config["problem"], dict) and config["problem"]["kind"] == "na"
    assert resolve_problem(config["problem"]).arch_space.choice_sizes == p.arch_space.choice_sizes


def test_user_errors_are_one_line():
    p = NaProblem()
    with pytest.raises(HpcnasError, match="importable"):
        p.load_data(lambda: None)
    with pytest.raises(HpcnasError, match="unknown hyper-parameter"):
        p.hyperparameters(epochs=3)
    with pytest.raises(HpcnasError, match="reserved"):
        p.add_hyperparameter((1, 4), "arch_3")
    with pytest.raises(HpcnasError, match="malformed"):
        p.objective("val r2")
    with pytest.raises(HpcnasError, match="no data loader"):
        p.check()
    with pytest.raises(HpcnasError, match="JSON values"):
        p.search_space("a.b", fn=object())


def test_parse_objective():
    assert parse_objective("val_r2") == (1.0, "val_r2", "last")
    assert parse_objective("-val_loss__max") == (-1.0, "val_loss", "max")
    assert parse_objective("val_acc__last") == (1.0, "val_acc", "last")


def test_combo_synthetic_is_deterministic_and_structured():
    x1, y1 = combo_data.make_synthetic(200, seed=5)
    x2, y2 = combo_data.make_synthetic(200, seed=5)
    x3, _ = combo_data.make_synthetic(200, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(x1, x2)) and np.array_equal(y1, y2)
    assert not np.array_equal(x1[1], x3[1])
    assert [a.shape for a in x1] == [(200, 24), (200, 32), (200, 32)] and y1.shape == (200, 1)
    assert not np.any(np.all(x1[1] == x1[2], axis=1))  # always two different drugs
    (xt, yt), (xv, yv) = combo_data.load_data(n_samples=100, valid_fraction=0.25)
    assert len(yt) == 75 and len(yv) == 25 and len(xt) == 3
    assert np.allclose(xt[0].mean(0), 0, atol=1e-5)


def test_combo_candle_loader_reads_the_real_file_format(tmp_path):
    cells = pd.DataFrame(np.arange(12, dtype=float).reshape(3, 4), columns=[f"g{i}" for i in range(4)])
    cells.insert(0, "Sample", ["NCI60.786-0", "NCI60.A549", "NCI60.MCF7"])
    cells.to_csv(tmp_path / combo_data.CELL_FILE, sep="\t", index=False)
    drugs = pd.DataFrame({"NAME": [740, 3088, 19893], "MW": [1.0, 2.0, 3.0], "nAT": [4.0, "na", 6.0]})
    drugs.to_csv(tmp_path / combo_data.DRUG_FILE, sep="\t", index=False)
    resp = pd.DataFrame({
        "SCREENER": ["1A"] * 5, "CELLNAME": ["786-0", "A549", "MCF7", "A549", "UNKNOWN"],
        "NSC1": [740, 3088, 19893, 740, 740], "CONC1": [1e-6] * 5,
        "NSC2": [3088, 19893, 740, None, 3088], "CONC2": [1e-6] * 5,
        "PERCENTGROWTH": [50.0, -20.0, 100.0, 10.0, 5.0],
    })
    resp.to_csv(tmp_path / combo_data.RESPONSE_FILE, index=False)
    x, y = combo_data.load_candle(str(tmp_path))
    assert y[:, 0].tolist() == pytest.approx([0.5, -0.2, 1.0])  # single-drug and unknown cell rows dropped
    assert x[0][1].tolist() == [4.0, 5.0, 6.0, 7.0]  # A549's expression
    assert x[1][1].tolist() == [2.0, 0.0] and x[2][1].tolist() == [3.0, 6.0]  # NSC 3088 (na -> 0) / 19893
    os.environ["HPCNAS_COMBO_DATA"] = str(tmp_path)
    try:
        (xt, yt), (xv, yv) = combo_data.load_data(valid_fraction=0.34)
    finally:
        del os.environ["HPCNAS_COMBO_DATA"]
    assert len(yt) + len(yv) == 3
    with pytest.raises(HpcnasError, match="download_data.sh"):
        combo_data.load_candle(str(tmp_path / "missing"))


def test_attn_synthetic_and_candle_h5_format(tmp_path):
    x, y = attn_data.make_synthetic(500, n_features=10, n_informative=4, positive_fraction=0.3, seed=1)
    assert x.shape == (500, 10) and set(np.unique(y)) == {0.0, 1.0}
    assert y.mean() == pytest.approx(0.3, abs=0.01)
    pytest.importorskip("tables")
    path = str(tmp_path / attn_data.DATA_FILE)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("val", 10)):
        pd.DataFrame(rng.normal(size=(n, 3))).to_hdf(path, key=f"x_{split}_0")
        pd.DataFrame(rng.normal(size=(n, 2))).to_hdf(path, key=f"x_{split}_1")
        labels = rng.integers(0, 2, n)
        pd.DataFrame({"0": 1 - labels, "1": labels}).to_hdf(path, key=f"y_{split}")
    (xt, yt), (xv, yv) = attn_data.load_candle(path)
    assert xt.shape == (30, 5) and xv.shape == (10, 5) and yt.shape == (30, 1)
    (xs, ys), _ = attn_data.load_data(data_path=path)
    assert np.allclose(xs.mean(0), 0, atol=1e-5) and np.array_equal(ys, yt)
