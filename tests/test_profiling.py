"""Cost metadata is checked against fvcore, the way torchvision tests its model metadata."""

import os

import pytest
import torch
import torchvision

from bench import profile
from bench.device import cpu_model
from bench.profiling import (
    MAX_REL_IQR,
    MIN_BLOCKS,
    RETRIES,
    Timing,
    count_mflops,
    count_params,
    network_fingerprint,
)


@pytest.mark.parametrize("arch, params_m, mflops", [
    ("shufflenet_v2_x1_0", 1.26, 147.79),
    ("resnet50", 23.52, 4109.47),
])
def test_fvcore_reproduces_the_papers_counts(arch, params_m, mflops):
    net = getattr(torchvision.models, arch)(num_classes=4)
    assert round(count_params(net), 2) == params_m
    assert round(count_mflops(net, 224)[0], 2) == pytest.approx(mflops, abs=0.01)


def test_profile_measures_latency_and_keeps_uncounted_ops():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    cost = profile(net, 64, "cpu", min_time=0.05, throughput_batch=4)
    assert cost.latency_ms > 0 and cost.latency_iqr_ms >= 0 and cost.throughput > 0
    assert cost.latency_device.startswith("cpu (") and cost.threads == torch.get_num_threads()
    assert cost.latency_processor == cpu_model()  # milliseconds belong to a processor model
    assert "aten::max_pool2d" in cost.unsupported_ops
    assert cost.input_size == 64 and cost.torch_version == torch.__version__


def test_profile_leaves_the_model_untouched():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    profile(net, 32, "cpu", min_time=0.01, throughput_batch=0)
    assert net.training
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_every_timing_carries_its_quality():
    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    cost = profile(net, 32, "cpu", min_time=0.05, throughput_batch=4)
    assert cost.latency_blocks >= 1 and isinstance(cost.latency_stable, bool)
    assert 0 < cost.latency_cpu_share <= 1 and 1 <= cost.latency_attempts <= 1 + RETRIES
    assert isinstance(cost.throughput_stable, bool)


def test_a_latency_timed_while_other_processes_load_the_cpu_is_unstable(monkeypatch):
    """Other processes on the cores can slow every call alike (a 31-ms ResNet-18 was once timed
    at 936 ms with an IQR of 1 %), which the IQR does not show: the load sampled around the
    timing does."""
    import bench.profiling as profiling

    net = torchvision.models.shufflenet_v2_x1_0(num_classes=4)
    samples = iter([0.1, 0.1, 0.0, 1.3])  # idle, idle; idle before, a busy neighbour after
    monkeypatch.setattr(profiling, "cpus_busy", lambda seconds=0.5: next(samples))
    quiet = profile(net, 32, "cpu", min_time=0.05, throughput_batch=0)
    busy = profile(net, 32, "cpu", min_time=0.05, throughput_batch=0)
    assert quiet.latency_others_busy == 0.1 and busy.latency_others_busy == 1.3
    assert not busy.latency_stable and quiet.latency_stable in (True, False)


def test_a_timing_is_stable_only_with_enough_blocks_and_a_narrow_spread():
    assert Timing(10.0, 0.5, blocks=MIN_BLOCKS).stable
    assert not Timing(10.0, 0.5, blocks=MIN_BLOCKS - 1).stable  # e.g. a single timed block
    assert not Timing(10.0, 10.0 * MAX_REL_IQR + 0.1, blocks=20).stable


class _Slow(torch.nn.Module):
    """A call longer than ``min_time`` / MIN_BLOCKS, like a batch of 32 through a ResNet-50."""

    def forward(self, x):
        import time
        time.sleep(0.1)
        return x


def test_a_call_slower_than_the_budget_still_gets_enough_blocks():
    from bench.profiling import time_forward_quality
    timing = time_forward_quality(_Slow(), torch.zeros(1), min_time=0.05)
    assert timing.blocks >= MIN_BLOCKS and timing.stable and timing.attempts == 1


def test_rounds_combine_into_their_median_and_drift_makes_a_figure_unstable():
    from bench.profiling import MAX_ROUND_SPREAD, CostProfile, combine_rounds

    def round_(ms, throughput=100.0):
        return CostProfile(1.0, 1.0, 32, latency_ms=ms, latency_iqr_ms=0.1, latency_blocks=10,
                           latency_stable=True, latency_cpu_share=1.0, latency_attempts=1,
                           throughput=throughput, throughput_batch=32, throughput_stable=True)

    steady = combine_rounds([round_(10.0), round_(10.4), round_(10.2)])
    assert steady.latency_ms == 10.2 and steady.latency_blocks == 30 and steady.latency_stable
    assert steady.latency_rounds == 3 and steady.latency_round_spread == pytest.approx(0.4 / 10.2)
    drifting = combine_rounds([round_(10.0, 100.0), round_(10.0 * (1.05 + MAX_ROUND_SPREAD), 50.0)])
    assert not drifting.latency_stable and not drifting.throughput_stable
    assert drifting.throughput == pytest.approx(32 / ((0.32 + 0.64) / 2))
    assert combine_rounds([round_(10.0)]).latency_round_spread is None


def test_identical_networks_have_one_fingerprint_and_others_differ():
    from bench import get_estimator

    def fingerprint(name, **params):
        return network_fingerprint(get_estimator(name, **params).build_network(7))

    effnet = {fingerprint(m) for m in ("efficientnet-b0", "efficientnet-ldl",
                                       "efficientnet-ldl-style")}
    assert len(effnet) == 1 and fingerprint("ours") == fingerprint("ours-sll")
    assert fingerprint("emo") == fingerprint("emo-ldl")
    assert len({fingerprint("shufflenet-v2"), fingerprint("ours"), fingerprint("ours-lem"),
                *effnet}) == 4
    assert fingerprint("ours") != network_fingerprint(
        get_estimator("ours").build_network(4))  # another head: another network


def test_a_grid_times_identical_networks_once(tmp_path):
    from bench.protocol import RunSpec, complete_latency, run_deferring_latency

    timed, records = {}, []
    for seed in (0, 1):  # the same architecture in two splits
        record, network = run_deferring_latency(RunSpec("shufflenet-v2", "synthetic", 4, seed,
                                                        preset="smoke"))
        records.append(complete_latency(record, network, timed=timed))
    first, second = records
    assert "latency_timed_with" not in first and second["latency_timed_with"] == "shufflenet-v2 seed 0"
    assert second["latency_ms"] == first["latency_ms"] and len(timed) == 1


def test_timing_threads_leave_busy_cpus_to_their_processes(monkeypatch):
    import psutil

    from bench.profiling import threads_beside_others

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(os.cpu_count()))
    monkeypatch.setattr("bench.profiling.usable_cpus", lambda: len(cpus))
    shares = {cpu: 0.0 for cpu in range(max(cpus) + 1)}
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: list(shares.values()))
    assert threads_beside_others(len(cpus), 0) == len(cpus)
    shares[cpus[0]] = 100.0
    assert threads_beside_others(len(cpus), 0) == max(1, len(cpus) - 1)
    if len(cpus) > 1:  # one busy process moving between two CPUs is still one CPU's worth
        shares[cpus[0]] = shares[cpus[1]] = 50.0
        assert threads_beside_others(len(cpus), 0) == len(cpus) - 1
    for cpu in cpus:
        shares[cpu] = 99.0
    assert threads_beside_others(len(cpus), 0) == 1
