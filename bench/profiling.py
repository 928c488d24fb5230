"""Cost of a network at inference: parameters, FLOPs and latency.

* Parameters: fvcore ``parameter_count``, in millions.
* FLOPs: fvcore ``FlopCountAnalysis`` at batch 1 in eval mode. fvcore counts one multiply-add as
  one FLOP (so its "MFLOPs" are mega multiply-accumulates); the operators it cannot count (pooling,
  element-wise activations) are kept in ``unsupported_ops``.
* Latency: batch 1, eval mode, ``torch.inference_mode()``, after warm-up; median and interquartile
  range in ms. On the CPU with ``torch.utils.benchmark.Timer`` at an explicit thread count; on CUDA
  with CUDA events around each call and a synchronisation before reading them, with
  ``cudnn.benchmark`` on. Throughput (images/s) is measured the same way at a larger batch.
* Quality: every timing keeps how many timed blocks it rests on, and the share of the CPU this
  process got while timing (process CPU time / (wall time x threads): near 1 on an idle machine,
  lower when other work competes for the cores). A timing is *stable* with at least
  :data:`MIN_BLOCKS` blocks and an IQR at most :data:`MAX_REL_IQR` of its median; an unstable one
  is measured again (up to :data:`RETRIES` times, each twice as long) and, if it stays unstable,
  is kept with ``latency_stable`` False, which boards mark. A CPU latency is also unstable when
  other processes kept at least :data:`BUSY_CPUS` CPUs busy just before or after it
  (``latency_others_busy``): their load slows every layer without widening the IQR. A timing
  lasts at least ``min_time`` and at least ``MIN_BLOCKS + 1`` calls, so a slow call (a batch
  through a large network) still gets its blocks.
* Rounds: :func:`combine_rounds` joins timings of one network made in several rounds (``bench
  profile --rounds``) into the median of their medians, unstable when they spread by more than
  :data:`MAX_ROUND_SPREAD`: drift over minutes is invisible inside one timing.
* Warm-up runs until the time per call settles (two consecutive windows within
  :data:`SETTLED` of each other, at most :data:`WARMUP_SECONDS`), not a fixed count: the first
  network measured in a process would otherwise pay for the thread pool's start.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .device import cpu_model, device_name, resolve_device, usable_cpus

# Both imports print third-party noise unrelated to the suite: fvcore scripts a loss with the
# deprecated torch.jit.script, and torch.utils.benchmark looks for a CUDA toolkit.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count
_cpp_logger = logging.getLogger("torch.utils.cpp_extension")
_level, _cpp_logger.level = _cpp_logger.level, logging.ERROR
from torch.utils import benchmark  # noqa: E402

_cpp_logger.setLevel(_level)


#: a timing rests on at least this many timed blocks ...
MIN_BLOCKS = 5
#: ... and its interquartile range is at most this fraction of its median
MAX_REL_IQR = 0.10
#: an unstable timing is measured again this many times, each twice as long
RETRIES = 2
#: a latency timed while other processes kept at least this many CPUs' worth busy (sampled for
#: BUSY_SAMPLE seconds, or the timing's ``min_time`` if shorter, before and after it) is
#: unstable: read as approximate
BUSY_CPUS = 0.5
BUSY_SAMPLE = 0.25
#: a figure timed in several rounds (``bench profile --rounds``) is stable only when its round
#: medians differ by at most this fraction of their median
MAX_ROUND_SPREAD = 0.10
#: warm-up ends when two consecutive windows' time per call differ by at most this fraction
SETTLED = 0.05
WARMUP_SECONDS = 3.0


@dataclass
class Timing:
    """One latency (or batch) measurement and what it is worth."""

    median_ms: float
    iqr_ms: float
    blocks: int
    cpu_share: float | None = None  # None on CUDA, where the device does the work
    attempts: int = 1

    @property
    def stable(self) -> bool:
        return self.blocks >= MIN_BLOCKS and self.iqr_ms <= MAX_REL_IQR * self.median_ms


@dataclass
class CostProfile:
    params_m: float
    mflops: float
    input_size: int
    unsupported_ops: dict = field(default_factory=dict)
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_device: str | None = None
    #: the processor model of a CPU timing (a GPU timing names its GPU in ``latency_device``):
    #: milliseconds from two processor models do not compare
    latency_processor: str | None = None
    throughput: float | None = None
    throughput_batch: int | None = None
    threads: int | None = None
    dtype: str = "float32"
    memory_format: str = "contiguous"
    torch_version: str = torch.__version__
    #: the latency's quality (see the module doc): timed blocks, stable or not, the CPU share
    #: this process got while timing, measurements taken
    latency_blocks: int | None = None
    latency_stable: bool | None = None
    latency_cpu_share: float | None = None
    latency_attempts: int | None = None
    #: CPUs' worth of other processes' work around the latency timing (the larger of a sample
    #: just before and one just after; CPU only): from :data:`BUSY_CPUS` on, the figure is unstable
    latency_others_busy: float | None = None
    throughput_stable: bool | None = None
    #: rounds the figures combine (:func:`combine_rounds`) and how far their medians spread
    latency_rounds: int | None = None
    latency_round_spread: float | None = None
    throughput_round_spread: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> float:
    """Parameters in millions (fvcore)."""
    return parameter_count(model)[""] / 1e6


def count_mflops(model: nn.Module, input_size: int = 224, channels: int = 3) -> tuple[float, dict]:
    """(MFLOPs at batch 1, {operator: count} fvcore could not count)."""
    model = copy.deepcopy(model).cpu().eval()
    x = torch.zeros(1, channels, input_size, input_size)
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            flops = FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = flops.total()
            unsupported = dict(flops.unsupported_ops())
    finally:
        logger.setLevel(level)
    return total / 1e6, unsupported


def _warm_up(fn, calls: int, max_seconds: float = WARMUP_SECONDS) -> float:
    """Call ``fn`` until its time per call settles (two consecutive windows of at least
    ``calls`` calls and 50 ms within :data:`SETTLED`), at most ``max_seconds``: the first calls of
    a model pay for memory allocation, thread-pool start-up and (on CUDA) kernel selection.
    Returns the last window's seconds per call."""
    start, previous = time.perf_counter(), None
    while True:
        window_start, n = time.perf_counter(), 0
        while n < calls or time.perf_counter() - window_start < 0.05:
            fn()
            n += 1
        per_call = (time.perf_counter() - window_start) / n
        if previous is not None and abs(per_call - previous) <= SETTLED * previous:
            return per_call
        if time.perf_counter() - start >= max_seconds:
            return per_call
        previous = per_call


def _cuda_times(fn, device, min_time: float) -> np.ndarray:
    torch.cuda.synchronize(device)
    times, spent = [], 0.0
    while spent < min_time * 1000 or len(times) < 10:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        times.append(start.elapsed_time(end))
        spent += times[-1]
    return np.asarray(times)  # ms


def _measure_once(run, device: torch.device, min_time: float) -> Timing:
    if device.type == "cuda":
        times = _cuda_times(run, device, min_time)
        q1, med, q3 = np.percentile(times, [25, 50, 75])
        return Timing(float(med), float(q3 - q1), blocks=len(times))
    threads = torch.get_num_threads()
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    wall, cpu = time.perf_counter(), time.process_time()
    m = timer.blocked_autorange(min_run_time=min_time)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    share = min(1.0, cpu / (wall * threads)) if wall > 0 else None
    return Timing(m.median * 1e3, m.iqr * 1e3, blocks=len(m.times), cpu_share=share)


def time_forward_quality(model: nn.Module, x: torch.Tensor, min_time: float = 1.0,
                         warmup: int = 3, amp: bool = False) -> Timing:
    """:class:`Timing` of ``model(x)`` under ``inference_mode`` on ``x``'s device (float16
    autocast when ``amp`` and on CUDA), measured again while unstable (see the module doc)."""
    use_amp = amp and x.device.type == "cuda"

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=use_amp):
            model(x)

    prior = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = x.device.type == "cuda" or prior
    try:
        if x.device.type == "cuda":  # settle on finished work, not on queued launches
            per_call = _warm_up(lambda: (run(), torch.cuda.synchronize(x.device)), max(warmup, 10))
        else:
            per_call = _warm_up(run, warmup)
        # a call slower than min_time / MIN_BLOCKS (a batch of 32 through a ResNet-50 on a CPU)
        # is its own block: time long enough for MIN_BLOCKS + 1 of them, or it can never be stable
        min_time = max(min_time, (MIN_BLOCKS + 1) * per_call)
        best = None
        for attempt in range(1 + RETRIES):
            timing = _measure_once(run, x.device, min_time * 2 ** attempt)
            rank = (timing.stable, -timing.iqr_ms / max(timing.median_ms, 1e-9))
            if best is None or rank > best[0]:
                best = (rank, timing)
            if timing.stable:
                break
        best[1].attempts = attempt + 1
        return best[1]
    finally:
        torch.backends.cudnn.benchmark = prior


def time_forward(model: nn.Module, x: torch.Tensor, min_time: float = 1.0,
                 warmup: int = 3, amp: bool = False) -> tuple[float, float]:
    """(median, IQR) in ms of :func:`time_forward_quality`."""
    timing = time_forward_quality(model, x, min_time, warmup, amp)
    return timing.median_ms, timing.iqr_ms


def _spread(values) -> float:
    values = np.asarray(values, dtype=float)
    return float((values.max() - values.min()) / np.median(values))


def combine_rounds(rounds: list[CostProfile]) -> CostProfile:
    """One profile from the same network timed in several rounds (``bench profile --rounds``,
    the list forward, then reversed, ...): the median of the round medians, the median IQR, all
    blocks, and the spread of the round medians ((max - min) / median). Drift between rounds (a
    busy neighbour, the clock of a virtual machine) is invisible inside one round, whose blocks
    follow one another within seconds; a figure is stable only when every round is and the
    spread is at most :data:`MAX_ROUND_SPREAD`."""
    first = rounds[0]
    if len(rounds) == 1 or first.latency_ms is None:
        return replace(first, latency_rounds=len(rounds))
    latency = [r.latency_ms for r in rounds]
    spread = _spread(latency)
    combined = replace(
        first, latency_ms=float(np.median(latency)),
        latency_iqr_ms=float(np.median([r.latency_iqr_ms for r in rounds])),
        latency_blocks=sum(r.latency_blocks for r in rounds),
        latency_stable=all(r.latency_stable for r in rounds) and spread <= MAX_ROUND_SPREAD,
        latency_cpu_share=None if first.latency_cpu_share is None
        else float(min(r.latency_cpu_share for r in rounds)),
        latency_attempts=sum(r.latency_attempts for r in rounds),
        latency_others_busy=None if first.latency_others_busy is None
        else float(max(r.latency_others_busy for r in rounds)),
        latency_rounds=len(rounds), latency_round_spread=spread)
    if first.throughput is not None:
        seconds = [first.throughput_batch / r.throughput for r in rounds]  # per batch
        combined.throughput = first.throughput_batch / float(np.median(seconds))
        combined.throughput_round_spread = _spread(seconds)
        combined.throughput_stable = (all(r.throughput_stable for r in rounds)
                                      and combined.throughput_round_spread <= MAX_ROUND_SPREAD)
    return combined


def network_fingerprint(model: nn.Module) -> str:
    """What decides a network's speed: its layers in order, each with its type, settings and
    parameter and buffer shapes (not their values). Networks of equal fingerprint (the three
    EfficientNet-B0 rows, ``ours`` and ``ours-sll``) are timed once per run and share the figure."""
    digest = hashlib.sha256()
    for module in model.modules():
        if next(module.children(), None) is not None:
            continue
        shapes = [tuple(t.shape) for t in (*module.parameters(recurse=False),
                                           *module.buffers(recurse=False))]
        digest.update(f"{type(module).__qualname__}({module.extra_repr()}){shapes};".encode())
    return digest.hexdigest()[:16]


def shared_timing(cost: CostProfile) -> dict:
    """The fields of ``cost`` that a network of the same fingerprint may take over: its latency
    and throughput measurements and the threads, dtype and memory format they were timed with
    (a profile made without timing keeps the defaults of these, which would misreport them)."""
    return {k: v for k, v in cost.as_dict().items()
            if k.startswith(("latency", "throughput")) or k in ("threads", "dtype", "memory_format")}


def cpus_busy(seconds: float = 0.5) -> float:
    """CPUs' worth of work other processes do right now on the CPUs this process may use: a
    psutil sample over ``seconds`` while this process waits (a busy process may move between
    CPUs, so the shares are summed, not counted per CPU). A sample, not the load average, which
    still counts a job that ended a minute ago."""
    import psutil

    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    shares = psutil.cpu_percent(interval=seconds, percpu=True)
    return sum(share for cpu, share in enumerate(shares) if allowed is None or cpu in allowed) / 100


def machine_busy(busy: float | None = None) -> str | None:
    """A sentence when other processes keep at least half a CPU busy (``busy``, or a fresh
    :func:`cpus_busy` sample), else ``None``: timings taken now are worth less, and say so."""
    busy = cpus_busy() if busy is None else busy
    if busy >= BUSY_CPUS:
        return (f"the machine is busy (other processes use {busy:.1f} of {usable_cpus()} "
                "CPU(s)): latencies measured now are slower and noisier than on an idle machine")
    return None


def threads_beside_others(threads: int, seconds: float = 0.5, busy: float | None = None) -> int:
    """How many of ``threads`` to time with while other processes keep CPUs busy: the usable CPUs
    less the CPUs' worth of work done on them (``busy``, or a :func:`cpus_busy` sample over
    ``seconds``), rounded, at least one. OpenMP threads wait for
    each other at every layer, so a thread that shares its core with another process stalls the
    whole pass: with one busy loop on a 2-core machine ShuffleNet-V2 took 21.3 ms (IQR 5.3, worst
    412 ms) with 2 threads against 8.4 ms (IQR 0.15) with 1; idle, 8.8 and 8.3 ms. docs/protocol.md
    has the study."""
    busy = cpus_busy(seconds) if busy is None else busy
    return max(1, min(threads, usable_cpus() - round(busy)))


def profile(model: nn.Module, input_size: int = 224, device="cpu", *, latency: bool = True,
            min_time: float = 1.0, throughput_batch: int = 32, channels_last: bool = False,
            amp: bool = False) -> CostProfile:
    """Params, MFLOPs and (optionally) batch-1 latency and throughput of ``model``.

    ``channels_last`` times the network and inputs in NHWC; ``amp`` times float16 autocast on
    CUDA (ignored on the CPU, where the record keeps ``dtype`` float32)."""
    mflops, unsupported = count_mflops(model, input_size)
    result = CostProfile(params_m=count_params(model), mflops=mflops, input_size=input_size,
                         unsupported_ops=unsupported)
    if not latency:
        return result
    return measure_latency(result, model, device, min_time=min_time,
                           throughput_batch=throughput_batch, channels_last=channels_last, amp=amp)


def cpu_device(threads: int) -> str:
    """The ``latency_device`` of a CPU timing: ``cpu (2 threads)``, ``cpu (1 thread)``."""
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


def measure_latency(result: CostProfile, model: nn.Module, device="cpu", *, min_time: float = 1.0,
                    throughput_batch: int = 32, channels_last: bool = False,
                    amp: bool = False) -> CostProfile:
    """Fill in the latency (and throughput) fields of ``result``, a profile of ``model`` made
    without them, e.g. because other work shared the machine at the time (``bench run --jobs``)."""
    input_size = result.input_size
    dev = resolve_device(device)
    net = copy.deepcopy(model).to(dev).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    use_amp = amp and dev.type == "cuda"

    def sample(batch):
        return torch.randn(batch, 3, input_size, input_size, device=dev).contiguous(
            memory_format=fmt)

    # other processes' load, sampled around the timing: it can slow every call alike, which
    # neither the IQR nor this process's CPU share then shows
    seconds = min(BUSY_SAMPLE, min_time)  # a short smoke timing gets short samples
    before = cpus_busy(seconds) if dev.type == "cpu" else None
    timing = time_forward_quality(net, sample(1), min_time, amp=use_amp)
    busy = None if before is None else max(before, cpus_busy(seconds))
    result.latency_ms, result.latency_iqr_ms = timing.median_ms, timing.iqr_ms
    result.latency_blocks = timing.blocks
    result.latency_stable = timing.stable and (busy is None or busy < BUSY_CPUS)
    result.latency_others_busy = busy
    result.latency_cpu_share, result.latency_attempts = timing.cpu_share, timing.attempts
    result.dtype = "float16 autocast" if use_amp else "float32"
    result.memory_format = "channels_last" if channels_last else "contiguous"
    if throughput_batch and throughput_batch > 1:
        batch = time_forward_quality(net, sample(throughput_batch), min_time, warmup=1,
                                     amp=use_amp)
        result.throughput = throughput_batch / (batch.median_ms / 1e3)
        result.throughput_stable = batch.stable
        result.throughput_batch = throughput_batch
    result.threads = torch.get_num_threads()
    result.latency_device = device_name(dev) if dev.type != "cpu" else cpu_device(result.threads)
    result.latency_processor = cpu_model() if dev.type == "cpu" else None
    return result
