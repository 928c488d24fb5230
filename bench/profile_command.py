"""``bench profile``: parameters and MFLOPs (fvcore) and latency and throughput
(``torch.utils.benchmark``, CUDA events on a GPU) of each method's inference network, measured
in rounds and merged into ``<out>/profile.csv`` beside earlier measurements of other networks,
sizes and devices.
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from .argtypes import names
from .device import resolve_device
from .errors import BenchError
from .files import atomic_write, check_writable, merge_table, read_table
from .profiling import (
    CostProfile,
    combine_rounds,
    cpus_busy,
    machine_busy,
    measure_latency,
    network_fingerprint,
    profile,
    shared_timing,
    threads_beside_others,
)
from .registry import get_estimator, list_methods, method_info

#: a profile.csv row is replaced only by a measurement of the same network, size and device
PROFILE_KEYS = ["method", "input_size", "latency_device", "dtype", "memory_format"]


def cmd_profile(args) -> int:
    if args.training_size:  # --image-size means the training size in every command
        raise BenchError("bench profile trains nothing, so it has no --image-size; measure at "
                         f"another input size with --profile-size {args.training_size}")
    methods = names(args.methods, list_methods(), "method")
    device = resolve_device(args.device)
    out = check_writable(args.out)
    existing = read_table(out / "profile.csv", PROFILE_KEYS)
    if device.type == "cpu":
        threads_for_timing()
    plans, timed = [], {}  # timed: one network per fingerprint, the first method that has it
    for method in methods:
        info = method_info(method)
        size = args.profile_size or info.profile_size
        estimator = get_estimator(method)
        network = estimator.build_network(args.classes)
        nhwc = estimator.channels_last if args.channels_last is None else args.channels_last
        # identical networks (same layers and shapes) are timed once and share the figure
        key = (network_fingerprint(network), size, nhwc)
        timed.setdefault(key, method)
        plans.append((method, size, network, nhwc, key, profile(network, size, latency=False)))
    rounds = {key: [] for key in timed}
    for r in range(args.rounds):
        for method, size, network, nhwc, key, counted in (plans if r % 2 == 0 else plans[::-1]):
            if timed[key] == method:
                rounds[key].append(_timed(method, counted, network, device, size, nhwc, args))
    rows, notes = [], []
    for method, size, _, _, key, counted in plans:
        first = timed[key]
        cost = CostProfile(**{**counted.as_dict(), **shared_timing(combine_rounds(rounds[key]))})
        rows.append({"method": method, "params_m": cost.params_m, "mflops": cost.mflops,
                     "latency_ms": cost.latency_ms, "latency_iqr_ms": cost.latency_iqr_ms,
                     "throughput": cost.throughput, "throughput_batch": cost.throughput_batch,
                     "input_size": size, "latency_device": cost.latency_device,
                     "latency_processor": cost.latency_processor, "dtype": cost.dtype,
                     "memory_format": cost.memory_format, "threads": cost.threads,
                     "torch": cost.torch_version, "latency_blocks": cost.latency_blocks,
                     "latency_stable": cost.latency_stable,
                     "latency_cpu_share": cost.latency_cpu_share,
                     "throughput_stable": cost.throughput_stable,
                     "latency_others_busy": cost.latency_others_busy,
                     "latency_rounds": cost.latency_rounds,
                     "latency_round_spread": cost.latency_round_spread,
                     "throughput_round_spread": cost.throughput_round_spread,
                     "latency_timed_with": first})
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(cost.unsupported_ops.items()))
        notes.append(f"- {method}: input 3x{size}x{size}" + (f"; not counted: {ops}" if ops else ""))
    table = pd.DataFrame(rows)
    merged = merge_table(existing, table, PROFILE_KEYS)
    atomic_write(out / "profile.csv", merged.to_csv(index=False, float_format="%.6g"))
    print(f"Cost at {args.classes} classes, batch 1, eval mode; fvcore counts 1 multiply-add as "
          f"1 FLOP; latency median (IQR) in ms; throughput in images/s at batch "
          f"{args.batch_sizes[1]}; torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (f" on {rows[0]['latency_processor']}" if rows[0]["latency_processor"] else "")
          + ", "
          f"{rows[0]['dtype']}; " + (f"each figure the median of {args.rounds} rounds (the list "
          "forward, then reversed), latency_round_spread how far they differ" if args.rounds > 1
          else "one round"))
    shown = ["method", "params_m", "mflops", "latency_ms", "latency_iqr_ms", "latency_blocks",
             "latency_round_spread", "latency_stable", "throughput", "throughput_stable",
             "latency_device", "memory_format"]
    print(table[shown].to_markdown(index=False, floatfmt=".2f"))
    print("\n".join(notes))
    shared = table[table["latency_timed_with"] != table["method"]]
    if len(shared):
        print("Identical networks were timed once and share that figure: " + "; ".join(
            f"{m} with {w}" for m, w in zip(shared["method"], shared["latency_timed_with"])))
    kept = len(merged) - len(table)
    print(f"wrote {out / 'profile.csv'}" + (f" ({kept} row(s) of other measurements kept)" if kept else ""))
    return 0


def threads_for_timing() -> None:
    """Before timing on the CPU: one CPU sample for a warning when other processes are busy and
    for the threads to time with (fewer, beside them; the records' device column says so)."""
    others = cpus_busy()
    busy = machine_busy(others)
    if busy:
        print(f"bench: warning: {busy}", file=sys.stderr)
    threads = threads_beside_others(torch.get_num_threads(), busy=others)
    if threads < torch.get_num_threads():
        print(f"bench: warning: other processes keep {torch.get_num_threads() - threads} "
              f"CPU(s) busy; timing with {threads} thread(s)", file=sys.stderr)
        torch.set_num_threads(threads)


def _timed(method, counted, network, device, size, nhwc, args) -> CostProfile:
    """One round's latency (and throughput) of ``network``, filled into a copy of ``counted``."""
    try:
        return measure_latency(CostProfile(**counted.as_dict()), network, device,
                               min_time=args.min_time, throughput_batch=args.batch_sizes[1],
                               channels_last=nhwc, amp=args.amp)
    except RuntimeError as err:  # torch.cuda.OutOfMemoryError is one too
        if "allocate" not in str(err) and not isinstance(err, torch.cuda.OutOfMemoryError):
            raise
        raise BenchError(f"{method}: out of memory at batch {args.batch_sizes[1]} and "
                         f"{size} px on {device.type}; measure throughput at a smaller batch "
                         "(--batch-sizes 1,32) or size (--profile-size)") from None
