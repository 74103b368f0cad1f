"""Throughput of ``hpcnas.nas.run.tf_distributed.run`` on the GPUs visible to this process.

For each replica count ``k`` in ``--replicas`` (default: 1 and all visible GPUs) a child
process sees ``CUDA_VISIBLE_DEVICES`` = the first ``k`` GPUs and trains the combo-like model
(MirroredStrategy, linear scaling rule for batch size and learning rate, 1 warm-up epoch).
Prints per run: replicas, devices, global batch, learning rate, training samples/s (median of
the epochs after the first, training batches only), speed-up over the first row, val_r2.
Without GPUs it runs on ``k`` logical CPU devices instead (a functional check, not a speed figure).

    python benchmarks/tf_distributed_gpu.py                       # 1 and all GPUs
    python benchmarks/tf_distributed_gpu.py --replicas 1 2 4 8 --samples 400000 --batch-size 512
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def child(args: argparse.Namespace) -> None:
    from hpcnas.problem import NaProblem

    problem = NaProblem(seed=1, reference=None)
    problem.load_data("hpcnas.nas.problems.combo.data.load_data", n_samples=args.samples, valid_fraction=0.1)
    problem.search_space("hpcnas.nas.problems.combo.space.create_search_space", num_layers=3, sub_layers=1,
                         num_skips=2, units=[256, 512, 1024])
    problem.hyperparameters(batch_size=args.batch_size, learning_rate=args.learning_rate, optimizer="adam",
                            num_epochs=args.epochs, lsr_batch_size=True, lsr_learning_rate=True,
                            warmup_lr=True, warmup_epochs=1)
    problem.loss("mse")
    problem.metrics(["r2"])
    problem.objective("val_r2__last")
    sizes = problem.arch_space.choice_sizes
    arch = [n - 2 if n > 2 else 0 for n in sizes]  # wide Dense layers, no skips
    from hpcnas.nas.run.tf_distributed import run

    result = run(problem.make_config(arch, {}))
    epochs = result["history"]["train_seconds"]
    timed = epochs[1:] if len(epochs) > 1 else epochs
    n_train = round(args.samples * 0.9)
    result["samples_per_s"] = n_train / statistics.median(timed)
    print("RESULT" + json.dumps({k: result[k] for k in (
        "num_replicas", "devices", "batch_size", "learning_rate", "samples_per_s", "objective", "num_parameters")}))


def visible_gpus() -> int:
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+")
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=256, help="per replica (LSR on)")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="for one replica (LSR on)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    gpus = visible_gpus()
    replicas = args.replicas or sorted({1, max(1, gpus)})
    print(f"visible GPUs: {gpus}" + ("" if gpus else " -- using logical CPU devices (not a speed figure)"), flush=True)
    rows = []
    for k in replicas:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
        if gpus:
            if k > gpus:
                print(f"skipping {k} replicas: only {gpus} GPUs", flush=True)
                continue
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(k))
        else:
            env["HPCNAS_TF_CPU_DEVICES"] = str(k)
        cmd = [sys.executable, __file__, "--child", "--samples", str(args.samples), "--batch-size", str(args.batch_size),
               "--learning-rate", str(args.learning_rate), "--epochs", str(args.epochs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
        if proc.returncode != 0 or not lines:
            print(f"{k} replicas failed:\n{proc.stderr[-3000:]}", flush=True)
            return 1
        row = json.loads(lines[-1][6:])
        rows.append(row)
        speedup = row["samples_per_s"] / rows[0]["samples_per_s"]
        print(f"replicas {row['num_replicas']}  global batch {row['batch_size']}  lr {row['learning_rate']:.4g}  "
              f"{row['samples_per_s']:,.0f} samples/s  speed-up x{speedup:.2f}  val_r2 {row['objective']:.4f}  "
              f"params {row['num_parameters']:,}  devices {row['devices']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
