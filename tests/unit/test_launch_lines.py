"""Launch lines per machine, as text, against the centres' published launch examples.

Each ``PUBLISHED`` line is the example of the user guide named next to it (docs/machines.rst
lists the URLs), with its shell variables filled in. A rendered line must carry every option
of the example with the same value (short and long spellings are the same option), plus only
the options hpcnas adds on purpose (the node list of the allocation slice, the job's
environment), listed per launcher below.
"""
from __future__ import annotations

import shlex

import pytest

from hpcnas.balsam import launch_lines as ll
from hpcnas.balsam.render import _Worker

APP = "./hello_affinity"

#: ALCF "Running Jobs on XC40" (Theta): 32 ranks/node, 4 threads, -d 4 -j 2 (hyperthreads)
THETA = "aprun -n 64 -N 32 --env OMP_NUM_THREADS=4 -cc depth -d 4 -j 2 ./hello_affinity"
#: ALCF "Running Jobs on Polaris": NRANKS_PER_NODE=16 NDEPTH=2 NTHREADS=2 on 2 nodes
POLARIS = ("mpiexec -n 32 --ppn 16 --depth=2 --cpu-bind depth --env OMP_NUM_THREADS=2 "
           "-env OMP_PLACES=threads ./hello_affinity")
#: NERSC "Example job scripts" (Perlmutter CPU, hybrid MPI+OpenMP): 8 ranks/node, -c 32 on 2 nodes
PERLMUTTER = "srun -n 16 -c 32 --cpu-bind=cores ./hello_affinity"
#: OLCF "Frontier User Guide" (job step example): 2 nodes, 16 ranks, 7 cores each, 1 GCD per rank
FRONTIER = "srun -N 2 -n 16 -c 7 --gpus-per-task=1 --gpu-bind=closest ./hello_affinity"
#: ALCF ThetaGPU (Balsam's own ThetaGpuMPICommand has the same form): 2 nodes x 8 ranks
THETAGPU = "mpirun -hostfile /var/tmp/cobalt.123 -n 16 -npernode 8 ./hello_affinity"

ALIASES = {
    "srun": {"-N": "--nodes", "-c": "--cpus-per-task", "--cpu_bind": "--cpu-bind", "-n": "-n"},
    "mpiexec": {"-env": "--env", "-ppn": "--ppn", "-d": "--depth"},
    "mpirun": {"-hostfile": "--hostfile", "-npernode": "--npernode", "-np": "-n"},
    "aprun": {"--env": "-e"},
}


def options(line: str, app: str = APP) -> list[tuple[str, str | None]]:
    """``[(option, value)]`` of a launch line up to the application (aliases normalised)."""
    tokens = shlex.split(line)
    launcher = tokens[0].rsplit("/", 1)[-1]
    names = ALIASES.get(launcher, {})
    out, i = [], 1
    while i < len(tokens) and tokens[i] != app.split()[0]:
        tok = tokens[i]
        assert tok.startswith("-"), f"stray token {tok!r} in {line!r}"
        if "=" in tok and tok.startswith("--") and tok.split("=", 1)[0] not in ("--env",):
            key, value = tok.split("=", 1)
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-") and tokens[i + 1] != app.split()[0]:
            key, value = tok, tokens[i + 1]
            i += 1
        else:
            key, value = tok, None
        out.append((names.get(key, key), value))
        i += 1
    assert " ".join(tokens[i:]) == app, line
    return out


def compare(rendered: str, published: str, *, omitted: set[str], added: set[str]) -> None:
    ours, theirs = options(rendered), options(published)
    missing = [o for o in theirs if o not in ours and o[0] not in omitted]
    extra = [o for o in ours if o not in theirs and o[0] not in added]
    assert not missing, f"options of the published example missing from {rendered!r}: {missing}"
    assert not extra, f"options the published example does not have in {rendered!r}: {extra}"


def spec(nodes: int, ranks: int, threads: int = 1, tpc: int = 1, envs=None) -> ll.LaunchSpec:
    return ll.LaunchSpec(hosts=[f"n{i:02d}" for i in range(nodes)], app_cmd=APP, ranks_per_node=ranks,
                         threads_per_rank=threads, threads_per_core=tpc, envs=envs or {})


def test_theta_aprun_matches_alcf_example():
    line = ll.aprun_line(spec(2, 32, threads=4, tpc=2, envs={"OMP_NUM_THREADS": 4}))
    assert line == "aprun -n 64 -N 32 -e OMP_NUM_THREADS=4 -L n00,n01 -cc depth -d 4 -j 2 ./hello_affinity"
    compare(line, THETA, omitted=set(), added={"-L"})


def test_theta_aprun_is_balsams_theta_command():
    """The theta site runs Balsam's ThetaMPICommand; the pure function renders the same text."""
    from balsam.launcher.mpi_commands import ThetaMPICommand

    for affinity, threads in (("depth", 4), ("none", 1)):
        balsam = ThetaMPICommand()([_Worker(3810), _Worker(3811)], app_cmd=APP, num_ranks=8, ranks_per_node=4,
                                   envs={}, cpu_affinity=affinity, threads_per_rank=threads, threads_per_core=1)
        ours = ll.aprun_line(ll.LaunchSpec(hosts=[3810, 3811], app_cmd=APP, ranks_per_node=4,
                                           threads_per_rank=threads), cpu_affinity=affinity)
        assert " ".join(balsam.split()) == ours


@pytest.mark.parametrize("site", ["polaris", "aurora"])
def test_polaris_and_aurora_pals_mpiexec_match_alcf_example(site):
    line = ll.pals_line(spec(2, 16, threads=2))
    assert line == ("mpiexec -n 32 --ppn 16 --hosts n00,n01 --depth=2 --cpu-bind depth "
                    "--env OMP_NUM_THREADS=2 ./hello_affinity")
    # OMP_PLACES is the application's choice (hpcnas sets only the thread count)
    compare(line, POLARIS.replace("-env OMP_PLACES=threads ", ""), omitted=set(), added={"--hosts"})


def test_pals_single_thread_has_no_binding_and_uses_the_recorded_launcher():
    line = ll.pals_line(spec(1, 4, envs={"A": "two words"}), mpiexec="/opt/cray/pals/bin/mpiexec")
    assert line == "/opt/cray/pals/bin/mpiexec -n 4 --ppn 4 --hosts n00 --env A='two words' ./hello_affinity"


def test_perlmutter_srun_matches_nersc_example():
    line = ll.srun_line(spec(2, 8, threads=32), cpu_bind="cores")
    assert line == ("srun --nodes 2 --nodelist n00,n01 -n 16 --ntasks-per-node 8 --cpus-per-task 32 "
                    "--cpu-bind=cores --export=ALL ./hello_affinity")
    compare(line, PERLMUTTER, omitted=set(), added={"--nodes", "--nodelist", "--ntasks-per-node", "--export"})


def test_frontier_srun_matches_olcf_example():
    line = ll.srun_line(spec(2, 8, threads=7), cpu_bind="cores")
    # GPUs per rank: hpcnas jobs carry no GPU count, so --gpus-per-task/--gpu-bind are not rendered
    compare(line, FRONTIER, omitted={"--gpus-per-task", "--gpu-bind"},
            added={"--nodelist", "--ntasks-per-node", "--export", "--cpu-bind"})


def test_generic_slurm_srun_keeps_the_clusters_binding():
    line = ll.srun_line(spec(1, 2), mpi_type="pmi2")
    assert line == "srun --nodes 1 --nodelist n00 -n 2 --ntasks-per-node 2 --mpi=pmi2 --export=ALL ./hello_affinity"


def test_thetagpu_openmpi_matches_hostfile_example():
    line = ll.openmpi_line(spec(2, 8), mpirun="/usr/local/mpi/bin/mpirun", hostfile="/var/tmp/cobalt.123")
    assert line.startswith("/usr/local/mpi/bin/mpirun --hostfile /var/tmp/cobalt.123 --host n00:8,n01:8 -n 16 ")
    compare(line, THETAGPU, omitted=set(), added={"--host", "-x", "--bind-to"})


def test_local_mpich_is_balsams_mpich_command():
    from balsam.launcher.mpi_commands import MPICHCommand

    balsam = MPICHCommand()([_Worker("vm")], app_cmd=APP, num_ranks=2, ranks_per_node=2, envs={},
                            cpu_affinity="none")
    assert ll.mpich_line(spec(1, 2)) == " ".join(balsam.split()) == "mpirun -n 2 --ppn 2 ./hello_affinity"


def test_plugins_render_through_the_pure_functions(monkeypatch):
    from hpcnas.balsam.render import mpi_command_line

    monkeypatch.setenv("HPCNAS_MPIRUN", "/opt/cray/pals/1.2/bin/mpiexec")
    assert mpi_command_line("HpcnasPalsCommand", ["x1", "x2"], app_cmd=APP, ranks_per_node=4, threads_per_rank=8) == (
        "/opt/cray/pals/1.2/bin/mpiexec -n 8 --ppn 4 --hosts x1,x2 --depth=8 --cpu-bind depth "
        "--env OMP_NUM_THREADS=8 ./hello_affinity")
    assert mpi_command_line("HpcnasSrunCommand", ["nid1"], app_cmd=APP, ranks_per_node=2, threads_per_rank=4,
                            srun_cpu_bind="cores") == (
        "srun --nodes 1 --nodelist nid1 -n 2 --ntasks-per-node 2 --cpus-per-task 4 --cpu-bind=cores "
        "--export=ALL ./hello_affinity")
