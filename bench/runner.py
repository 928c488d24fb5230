"""Running many (method, seed) runs: one after another, or several at once in worker processes.

``bench run`` hands its runs here. With one job each run trains, is scored and profiled (latency
included) in this process, and its record is written as soon as it is done. With ``jobs > 1`` on a
CPU, ``jobs`` worker processes of ``threads // jobs`` PyTorch threads each train runs side by
side, since small networks use two threads poorly (one ShuffleNet-V2 training step at 48 px on 2
cores: 78 ms with 2 threads, 95 ms with 1; two 1-thread processes finish two steps in 105 ms).
Then:

* a run that needs a teacher (``needs_teacher``) waits until one worker has trained that teacher,
  and gets the fitted teacher, so a split's teacher is still trained once (the teacher's own row,
  ``ldgn``, reuses it as in a sequential run); teachers are trained first;
* a run whose fit is identical to another's (equal :func:`bench.protocol.fit_keys`, e.g.
  ``efficientnet-ldl-style`` on a balanced dataset, where it stylises nothing) waits for that
  run and reuses its fitted model, as a sequential run would;
* of the runs that can start, the one with the most :func:`expected_work` starts first, so the
  longest run does not start last while the other workers have nothing left to do (quick board,
  seed 0: 309 s in registry order, EAC starting eighth and finishing alone 130 s later);
* latency is never timed while other runs train: each finished run is kept in
  ``<out>/pending/<run>.pt`` (its record and inference network), and once no worker is left, the
  latency of each is timed here, one network at a time, with every thread, exactly as a sequential
  run would, before its record is written to ``runs/`` and the pending file removed. An
  interrupted run leaves its pending files, which the next ``bench run`` finishes first;
* training time (``train_s``) is the wall time in a worker that shared the CPU with the others, so
  it is longer than in a sequential run; each record stores ``jobs`` and its threads.

On a CPU and the same thread count per run, results do not depend on the number of jobs.
"""

from __future__ import annotations

import contextlib
import io
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import checkpointing
from .engine import get_engine_options, set_engine_options
from .protocol import (
    RunSpec,
    complete_latency,
    estimator_params,
    expected_settings,
    fit_keys,
    fit_teacher,
    fitted_estimator,
    provide_fit,
    run_deferring_latency,
    run_one,
    settings_of,
)
from .records import atomic_write, write_record
from .registry import method_info

Report = Callable[[RunSpec, dict, float], None]


@dataclass
class Unit:
    """One run to do and where its files go."""

    spec: RunSpec
    path: Path  # its record, ``<out>/runs/<run>.json``
    out: Path

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints" / self.path.stem

    @property
    def pending(self) -> Path:
        return self.out / "pending" / f"{self.path.stem}.pt"

    def finished(self, record: dict) -> None:
        """Write the complete record and drop what the run kept until then."""
        write_record(self.out, record)
        discard(self)


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # only when nothing else is left there


def load_pending(unit: Unit) -> tuple[dict, torch.nn.Module] | None:
    """The trained run waiting for its latency, if one with this unit's settings was kept."""
    if not unit.pending.is_file():
        return None
    try:
        kept = torch.load(unit.pending, map_location="cpu", weights_only=False)
        if settings_of(kept["record"]) == expected_settings(unit.spec):
            return kept["record"], kept["network"]
    except Exception:  # noqa: BLE001 - unreadable or from another version: train it again
        pass
    unit.pending.unlink(missing_ok=True)
    return None


def discard(unit: Unit) -> None:
    """Forget a unit's checkpoints and pending file (once its record is written, or ``--force``)."""
    unit.pending.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        unit.pending.parent.rmdir()
    _remove(unit.checkpoints)


def run_sequential(units: list[Unit], *, checkpoint_every: float, verbose: int,
                   report: Report) -> None:
    for unit in units:
        start = time.perf_counter()
        with checkpointing(unit.checkpoints, every=checkpoint_every):
            record = run_one(unit.spec, verbose=verbose)
        record["jobs"] = 1
        unit.finished(record)
        report(unit.spec, record, time.perf_counter() - start)


def finish_pending(units: list[Unit], report: Report | None) -> list[Unit]:
    """Time the latency of the units kept in ``pending/`` and write their records; returns the
    units that still need training."""
    left = []
    for unit in units:
        kept = load_pending(unit)
        if kept is None:
            left.append(unit)
            continue
        start = time.perf_counter()
        record = complete_latency(*kept)
        unit.finished(record)
        if report is not None:
            report(unit.spec, record, time.perf_counter() - start)
    return left


def expected_work(spec: RunSpec) -> float:
    """A rough size of a run's training, for ordering only: the network's MFLOPs at its input size
    times epochs (0 for a method without a stored cost). It ignores per-FLOP speed (EfficientNet is
    slow per FLOP on a CPU) and extra passes (EAC runs its ResNet-50 twice a step)."""
    info = method_info(spec.method)
    if info.cost is None:
        return 0.0
    params = estimator_params(spec)
    size = params.get("image_size") or info.cost.input_size
    return info.cost.mflops * (size / info.cost.input_size) ** 2 * (params.get("epochs") or 1)


def _init_worker(threads: int, options: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops workers
    # tqdm's default lock is a multiprocessing semaphore, which a stopped worker would leak
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    set_engine_options(**options)


def _train_teacher(spec: RunSpec, checkpoints: Path, every: float):
    with checkpointing(checkpoints, every=every):
        return fit_teacher(spec)


def _train_unit(spec: RunSpec, checkpoints: Path, every: float, jobs: int, provided,
                share: tuple | None):
    """A run without its latency: (what goes to its pending file, its record, and its fitted
    estimator when ``share`` names its fit key, for identical runs waiting for it)."""
    if provided is not None:
        provide_fit(*provided)
    with checkpointing(checkpoints, every=every):
        record, network = run_deferring_latency(spec)
    record["jobs"] = jobs
    buffer = io.BytesIO()
    torch.save({"record": record, "network": network}, buffer)
    return buffer.getvalue(), record, None if share is None else fitted_estimator(share)


def run_parallel(units: list[Unit], *, jobs: int, threads: int, checkpoint_every: float,
                 report: Report) -> None:
    """Train ``units`` in ``jobs`` worker processes of ``threads`` threads each, then time their
    latency here, one at a time (see the module docstring)."""
    keys = {id(u): fit_keys(u.spec) for u in units}
    needed = {teacher for _, teacher in keys.values() if teacher is not None}
    todo = sorted(units, key=lambda u: -expected_work(u.spec))  # stable: registry order on ties
    # a unit whose own fit is another's, earlier one waits for that run and reuses its model
    first_of, shares = {}, {}
    for unit in todo:
        own = keys[id(unit)][0]
        if own not in needed:
            first_of.setdefault(own, unit)
            if first_of[own] is not unit:
                shares[id(first_of[own])] = own
    # a unit then waits for the fit it is itself the teacher of, an identical earlier run, or
    # the teacher it learns from
    waits = {}
    for unit in units:
        own, teacher = keys[id(unit)]
        if own in needed or first_of.get(own, unit) is not unit:
            waits[id(unit)] = own
        else:
            waits[id(unit)] = teacher
    teachers_to_fit = {}
    for unit in units:
        key = keys[id(unit)][1]
        if key is not None and key not in teachers_to_fit:
            teachers_to_fit[key] = unit
    fitted: dict = {}
    trained: list[Unit] = []
    results: queue.Queue = queue.Queue()
    print(f"training {len(units)} run(s) in {jobs} worker processes of {threads} thread(s) each; "
          "latency is timed afterwards, one network at a time", flush=True)
    context = torch.multiprocessing.get_context("spawn")
    pool = context.Pool(jobs, initializer=_init_worker,
                        initargs=(threads, get_engine_options().as_dict()))
    try:
        busy = 0

        def submit(kind, item, fn, args):
            nonlocal busy
            busy += 1
            started = time.perf_counter()
            pool.apply_async(fn, args,
                             callback=lambda r: results.put((kind, item, r, None, started)),
                             error_callback=lambda e: results.put((kind, item, None, e, started)))

        def fill():
            while busy < jobs and (teachers_to_fit or todo):
                if teachers_to_fit:
                    key, unit = next(iter(teachers_to_fit.items()))
                    del teachers_to_fit[key]
                    submit("teacher", unit, _train_teacher,
                           (unit.spec, unit.checkpoints, checkpoint_every))
                    continue
                ready = [u for u in todo if waits[id(u)] is None or waits[id(u)] in fitted]
                if not ready:
                    return
                unit = ready[0]
                todo.remove(unit)
                key = waits[id(unit)]
                submit("run", unit, _train_unit, (unit.spec, unit.checkpoints, checkpoint_every,
                                                  jobs, None if key is None else (key, fitted[key]),
                                                  shares.get(id(unit))))

        fill()
        while busy:
            try:
                kind, item, result, error, started = results.get(timeout=0.5)
            except queue.Empty:
                continue
            busy -= 1
            if error is not None:
                raise error
            if kind == "teacher":
                key, teacher = result
                fitted[key] = teacher
                print(f"{type(teacher).__name__} (teacher) seed {item.spec.seed}: trained "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
            else:
                kept, record, estimator = result
                if estimator is not None:
                    fitted[shares[id(item)]] = estimator
                atomic_write(item.pending, kept)
                _remove(item.checkpoints)
                trained.append(item)
                report(item.spec, record, time.perf_counter() - started)
            fill()
        pool.close()
    finally:  # on an error or Ctrl-C, stop the workers (their checkpoints stay)
        pool.terminate()
        pool.join()
    start = time.perf_counter()
    left = finish_pending(trained, report=None)
    print(f"timed the latency of {len(trained) - len(left)} network(s), one at a time "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
