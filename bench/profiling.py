"""Cost of a network at inference: parameters, FLOPs and latency.

* Parameters: fvcore ``parameter_count``, in millions.
* FLOPs: fvcore ``FlopCountAnalysis`` at batch 1 in eval mode. fvcore counts one multiply-add as
  one FLOP (so its "MFLOPs" are mega multiply-accumulates); the operators it cannot count (pooling,
  element-wise activations) are kept in ``unsupported_ops``.
* Latency: batch 1, eval mode, ``torch.inference_mode()``, after warm-up; median and interquartile
  range in ms. On the CPU with ``torch.utils.benchmark.Timer`` at an explicit thread count; on CUDA
  with CUDA events around each call and a synchronisation before reading them, with
  ``cudnn.benchmark`` on. Throughput (images/s) is measured the same way at a larger batch.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .device import device_name, resolve_device

# Both imports print third-party noise unrelated to the suite: fvcore scripts a loss with the
# deprecated torch.jit.script, and torch.utils.benchmark looks for a CUDA toolkit.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count
_cpp_logger = logging.getLogger("torch.utils.cpp_extension")
_level, _cpp_logger.level = _cpp_logger.level, logging.ERROR
from torch.utils import benchmark  # noqa: E402

_cpp_logger.setLevel(_level)


@dataclass
class CostProfile:
    params_m: float
    mflops: float
    input_size: int
    unsupported_ops: dict = field(default_factory=dict)
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_device: str | None = None
    throughput: float | None = None
    throughput_batch: int | None = None
    threads: int | None = None
    dtype: str = "float32"
    memory_format: str = "contiguous"
    torch_version: str = torch.__version__

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


def _warm_up(fn, calls: int, seconds: float = 0.25) -> None:
    """At least ``calls`` calls and ``seconds`` of them: the first calls of a model pay for
    memory allocation, thread-pool start-up and (on CUDA) kernel selection."""
    start, n = time.perf_counter(), 0
    while n < calls or time.perf_counter() - start < seconds:
        fn()
        n += 1


def _cuda_times(fn, device, min_time: float, warmup: int) -> np.ndarray:
    _warm_up(fn, warmup)
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


def time_forward(model: nn.Module, x: torch.Tensor, min_time: float = 1.0,
                 warmup: int = 3, amp: bool = False) -> tuple[float, float]:
    """(median, IQR) in ms of ``model(x)`` under ``inference_mode`` on ``x``'s device
    (float16 autocast when ``amp`` and on CUDA)."""
    use_amp = amp and x.device.type == "cuda"

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=use_amp):
            model(x)

    if x.device.type == "cuda":
        prior = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            times = _cuda_times(run, x.device, min_time, warmup=max(warmup, 10))
        finally:
            torch.backends.cudnn.benchmark = prior
        q1, med, q3 = np.percentile(times, [25, 50, 75])
        return float(med), float(q3 - q1)
    _warm_up(run, warmup)
    timer = benchmark.Timer(stmt="run()", globals={"run": run},
                            num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_time)
    return m.median * 1e3, m.iqr * 1e3


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

    result.latency_ms, result.latency_iqr_ms = time_forward(net, sample(1), min_time,
                                                            amp=use_amp)
    result.dtype = "float16 autocast" if use_amp else "float32"
    result.memory_format = "channels_last" if channels_last else "contiguous"
    if throughput_batch and throughput_batch > 1:
        batch_ms, _ = time_forward(net, sample(throughput_batch), min_time, warmup=1,
                                   amp=use_amp)
        result.throughput = throughput_batch / (batch_ms / 1e3)
        result.throughput_batch = throughput_batch
    result.threads = torch.get_num_threads()
    result.latency_device = device_name(dev) if dev.type != "cpu" else f"cpu ({result.threads} threads)"
    return result
