"""pytest-benchmark: what the Dask engine costs per run.

The same trivial run (one epoch of ShuffleNet-V2 on a few synthetic frames, latency off) from
planning to record written: in this process, and as tasks on an already started one-worker
``LocalCluster`` (fit and score tasks, the result sent back, the pending file written, the
latency task's round trip, the record written). ``.ci/run`` prints the difference of the medians:
the engine's overhead per run, in milliseconds.
"""

from __future__ import annotations

import pytest
import torch

from bench import RunSpec
from bench.records import run_path
from bench.runner import Unit, plan, run_in_process, run_on_dask

SPEC = RunSpec("shufflenet-v2", preset="smoke", latency=False, params={"epochs": 1},
               dataset_options={"n_subjects": 6, "frames": 2})


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _unit(out):
    return Unit(SPEC, run_path(out, "synthetic", 4, SPEC.method, 0), out)


def test_trivial_run_in_process(benchmark, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker's run
    try:
        benchmark.pedantic(lambda: run_in_process(plan([_unit(tmp_path)])), rounds=5,
                           warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)


def test_trivial_run_on_dask(benchmark, tmp_path, client):
    benchmark.pedantic(lambda: run_on_dask(client, plan([_unit(tmp_path)]), threads=1),
                       rounds=5, warmup_rounds=1)
