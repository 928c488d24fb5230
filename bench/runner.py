"""Running a grid of (method, seed) runs: in this process, or as tasks on a Dask cluster.

A grid is first *planned* (:func:`plan`): every run's fit is identified by
:func:`bench.protocol.fit_keys`, so that

* a teacher is a fit task of its own, trained once per (split, teacher settings); the fits of the
  students that learn from it depend on it, and the teacher's own row (``ldgn``) is scored from it;
* two runs whose fits are identical (``efficientnet-ldl-style`` on a balanced dataset, where it
  stylises nothing) share one fit task; each still gets its own record, with its own parameters
  and ``reused_fit`` set on the second;
* every run is a score task depending on its fit: calibrate a copy, predict, score, profile.

The plan is then executed:

* **in this process** (``bench run --jobs 1``, :func:`run_in_process`): run after run, each
  fit trained when first needed and dropped once nothing needs it, latency timed right after each
  run (nothing else runs), each record written as soon as it is complete;
* **on Dask** (:func:`run_on_dask`, a ``LocalCluster`` for ``--jobs N`` or any scheduler for
  ``--scheduler``; :mod:`bench.cluster`): a fit task (with its score tasks) is sent whenever the
  cluster has a free slot, in the order teachers first, then the largest fits (see
  :func:`expected_work`); a student once its teacher is done; Dask places and runs them, passes
  the teacher's result to its students, a task whose worker dies is retried on another worker (Dask's
  ``distributed.scheduler.allowed-failures``), and a run that fails for good is reported with its
  error while the others go on. Each finished run comes back to the caller, which keeps it in
  ``<out>/pending/<run>.pt`` (record and inference network). Latency is never timed while other
  runs train: once training is over, each pending network is timed by one task at a time (on a
  worker with a GPU resource for CUDA runs; for a ``LocalCluster`` here, in the caller, once the
  cluster is closed), and only then is its record written to ``runs/``.
  An interrupted grid leaves its pending files, which the next ``bench run`` finishes first.

Training time (``train_s``) is the wall time of the fit on its worker, which shares the machine
with the other workers of a ``LocalCluster``; each record says how it ran (``execution``). On a
CPU, with the same threads per run, records do not depend on how the grid was executed.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import io
import os
import shutil
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import checkpointing
from .data import dataset_info, resolve_root
from .engine import engine_options, get_engine_options
from .errors import BenchError, DataWarning
from .estimator import EmotionClassifier
from .files import atomic_write
from .presets import get_preset
from .protocol import (
    Fit,
    RunSpec,
    complete_latency,
    estimator_params,
    expected_settings,
    fit_keys,
    fit_run,
    fit_teacher,
    run_deferring_latency,
    settings_of,
)
from .records import write_record
from .registry import method_info
from .splits import CALIBRATION_SHARE

Report = Callable[["Unit", dict, float], None]
Failed = Callable[["Unit", BaseException], None]

#: errors a run can end with that are the user's to fix (one line, no traceback)
USER_ERRORS = (BenchError, torch.cuda.OutOfMemoryError)


@dataclass
class Unit:
    """One run to do, and where its files go (``out=None``: the caller keeps the record)."""

    spec: RunSpec
    path: Path | None = None  # its record, ``<out>/runs/<run>.json``
    out: Path | None = None
    estimator: EmotionClassifier | None = None  # an unregistered method's template

    @property
    def name(self) -> str:
        return self.path.stem if self.path else f"{self.spec.method}-seed{self.spec.seed}"

    @property
    def checkpoints(self) -> Path | None:
        return None if self.out is None else self.out / "checkpoints" / self.name

    @property
    def lock(self) -> Path | None:
        """Held while this run is trained or discarded (:func:`bench.files.locked`)."""
        return None if self.out is None else self.out / "checkpoints" / f"{self.name}.lock"

    @property
    def pending(self) -> Path | None:
        return None if self.out is None else self.out / "pending" / f"{self.name}.pt"

    def finished(self, record: dict) -> None:
        """Write the complete record and drop what the run kept until then."""
        if self.out is not None:
            with _cannot_write(self.path):
                write_record(self.out, record)
            discard(self)


@contextlib.contextmanager
def _cannot_write(path: Path):
    """A full disk or a folder made read-only mid-run is the user's to fix: one line that says
    what was kept, and (in a grid) the other runs go on."""
    try:
        yield
    except OSError as err:
        raise BenchError(f"could not write {path} ({err.strerror or err}); records written "
                         "before are kept, and rerunning the same command resumes") from None


@dataclass
class FitTask:
    """One fit of a plan: trained with ``unit``'s spec (a teacher with one of its students')."""

    name: str
    unit: Unit
    teacher: str | None = None  # the fit task it learns from
    is_teacher: bool = False


@dataclass
class RunTask:
    """One run of a plan, scored from the fit task ``fit``."""

    unit: Unit
    fit: str
    reused: bool  # another run of the grid trained that fit (or it is a teacher)
    teacher: str | None = None  # the teacher task its fit learns from


@dataclass
class Plan:
    fits: dict[str, FitTask]  # teachers before the fits that learn from them
    runs: list[RunTask]

    def uses(self) -> Counter:
        """How many runs and student fits depend on each fit."""
        uses = Counter(run.fit for run in self.runs)
        uses.update(f.teacher for f in self.fits.values() if f.teacher)
        return uses


def plan(units: list[Unit]) -> Plan:
    """Fit and score tasks for ``units`` (see the module docstring)."""
    names: dict[tuple, str] = {}
    fits: dict[str, FitTask] = {}

    def task_name(key: tuple, unit: Unit, kind: str) -> str:
        if key not in names:
            spec = unit.spec
            digest = hashlib.sha1(repr(key).encode()).hexdigest()[:8]
            what = "teacher" if kind == "teacher" else f"fit-{spec.method}"
            names[key] = f"{what}-{spec.dataset}-{spec.classes}-seed{spec.seed}-{digest}"
        return names[key]

    keys = [fit_keys(u.spec, u.estimator) for u in units]
    for unit, (_, teacher) in zip(units, keys):
        if teacher is not None and teacher not in names:
            name = task_name(teacher, unit, "teacher")
            fits[name] = FitTask(name, unit, is_teacher=True)
    runs = []
    for unit, (own, teacher) in zip(units, keys):
        reused = own in names
        if not reused:
            name = task_name(own, unit, "fit")
            fits[name] = FitTask(name, unit, None if teacher is None else names[teacher])
        runs.append(RunTask(unit, names[own], reused, fits[names[own]].teacher))
    return Plan(fits, runs)


def expected_work(spec: RunSpec) -> float:
    """A rough size of a run's training, for ordering only: the network's MFLOPs at its input size
    times epochs (0 for a method without a stored cost). It ignores per-FLOP speed (EfficientNet is
    slow per FLOP on a CPU) and extra passes (EAC runs its ResNet-50 twice a step)."""
    try:
        info = method_info(spec.method)
    except BenchError:  # an unregistered estimator
        return 0.0
    if info.cost is None:
        return 0.0
    params = estimator_params(spec)
    size = params.get("image_size") or info.cost.input_size
    return info.cost.mflops * (size / info.cost.input_size) ** 2 * (params.get("epochs") or 1)


# -- files a run keeps until its record is written ------------------------------------------------

def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # only when nothing else is left there


def load_pending(unit: Unit) -> tuple[dict, torch.nn.Module] | None:
    """The trained run waiting for its latency, if one with this unit's settings was kept."""
    if unit.pending is None or not unit.pending.is_file():
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
    if unit.out is None:
        return
    unit.pending.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        unit.pending.parent.rmdir()
    _remove(unit.checkpoints)


def pending_bytes(units: list[Unit]) -> tuple[list[tuple[Unit, bytes]], list[Unit]]:
    """(the units kept in ``pending/`` with what they kept, for a cluster to time; the units that
    still need training)."""
    kept, left = [], []
    for unit in units:
        if load_pending(unit) is None:  # checks it (and drops it when stale)
            left.append(unit)
        else:
            kept.append((unit, unit.pending.read_bytes()))
    return kept, left


def finish_pending(units: list[Unit], report: Report | None) -> list[Unit]:
    """Time here the latency of the units kept in ``pending/`` and write their records; returns
    the units that still need training. Identical networks are timed once and share the figure
    (:func:`bench.protocol.complete_latency`)."""
    left, timed = [], {}
    for unit in units:
        kept = load_pending(unit)
        if kept is None:
            left.append(unit)
            continue
        start = time.perf_counter()
        record = complete_latency(*kept, timed=timed)
        unit.finished(record)
        if report is not None:
            report(unit, record, time.perf_counter() - start)
    return left


# -- the tasks: plain functions of picklable arguments, the same in this process and on Dask ------

_MALLOC_TUNED = []


def _undo_malloc_trimming() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's
    adaptive mmap threshold: every large tensor PyTorch allocates is then a fresh ``mmap`` and
    its pages fault in again, and a ShuffleNet-V2 training step at 48 px took 158 ms instead of
    82 ms (one-thread worker against this process, measured here). Raising the mmap and trim
    thresholds (1 GiB) gives 83 ms; a worker then keeps up to that much freed memory."""
    if _MALLOC_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    _MALLOC_TUNED.append(True)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: the variable means nothing there
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)


def _settle(threads: int | None) -> None:
    """A task's process settings: its PyTorch threads (``None``: as the worker has them); in a
    Dask worker, no data warnings (:class:`bench.errors.DataWarning`): the caller listed the same
    data before sending any task and showed them, and every fit would repeat them; other warnings
    go to the caller (:func:`_forward_warnings`)."""
    _undo_malloc_trimming()
    if _worker_address() is not None:
        warnings.filterwarnings("ignore", category=DataWarning)
        _forward_warnings()
    if threads:
        torch.set_num_threads(threads)
    # tqdm's default lock is a multiprocessing semaphore, which a stopped worker would leak
    tqdm.set_lock(threading.RLock())


def fit_task(task: FitTask, teacher: Fit | None, *, every: float, threads: int | None,
             options: dict, verbose: int = 0) -> Fit:
    """Train one fit of a plan (checkpointed in its unit's folder)."""
    _settle(threads)
    spec, estimator = task.unit.spec, task.unit.estimator
    with engine_options(**options), checkpointing(task.unit.checkpoints, every=every):
        if task.is_teacher:
            return fit_teacher(spec, estimator)
        return fit_run(spec, estimator, teacher=teacher, verbose=verbose)


def score_task(task: RunTask, fitted: Fit, *, threads: int | None, options: dict,
               execution: dict, defer: bool, verbose: int = 0) -> tuple[bytes | None, dict]:
    """Score one run from its fit: (its record and network for ``pending/`` when latency is
    ``defer``-red, else ``None``; its record)."""
    _settle(threads)
    with engine_options(**options):
        record, network = run_deferring_latency(task.unit.spec, estimator=task.unit.estimator,
                                                verbose=verbose, defer=defer, fitted=fitted,
                                                reused=task.reused)
    record["execution"] = {**execution, "fit_task": task.fit, "teacher_task": task.teacher,
                           "worker": _worker_address()}
    record["jobs"] = execution.get("workers", 1)
    if not defer:
        return None, record
    buffer = io.BytesIO()
    torch.save({"record": record, "network": network}, buffer)
    return buffer.getvalue(), record


def latency_task(kept: bytes | tuple, *, threads: int | None) -> dict:
    """Time the latency of a pending run (its record and network as :func:`score_task` kept
    them, or that task's whole result) and return its complete record."""
    _settle(threads)
    if isinstance(kept, tuple):
        kept = kept[0]
    saved = torch.load(io.BytesIO(kept), map_location="cpu", weights_only=False)
    record = complete_latency(saved["record"], saved["network"])
    record["execution"] = {**record.get("execution", {}), "latency_worker": _worker_address()}
    return record


#: the Dask event topic of warnings raised in a grid's tasks
WARNING_TOPIC = "bench-warning"


def _forward_warnings() -> None:
    """In a Dask worker: a warning raised in a task becomes an event (:data:`WARNING_TOPIC`, with
    the task's key) that the caller shows once, in its own format and naming the run
    (:class:`_WarningRelay`), instead of a line in the worker's log that the user of a cluster
    may never read (and, on a ``LocalCluster``, one in Python's default format per worker).
    Warnings outside tasks (the worker's own) are shown as before."""
    previous = warnings.showwarning
    if getattr(previous, "bench_forwards", False):
        return

    def forward(message, category, filename, lineno, file=None, line=None):
        try:
            from distributed import get_worker

            worker = get_worker()
            key = worker.get_current_task()
        except (ImportError, ValueError):
            key = None
        if key is None:  # not in a task
            return previous(message, category, filename, lineno, file, line)
        worker.log_event(WARNING_TOPIC, {
            "key": str(key), "message": str(message), "filename": str(filename),
            "lineno": lineno, "category": f"{category.__module__}:{category.__qualname__}"})

    forward.bench_forwards = True
    warnings.showwarning = forward


class _WarningRelay:
    """The caller's end of :func:`_forward_warnings`: shows each warning of this grid's tasks
    (keys ending in ``-<token>``) once, prefixed with its run (``labels``: key -> run), as a
    warning here, so the CLI prints it as one line and ``-W``/filters apply. Events arrive while
    the grid runs; leaving the block shows any still on their way, read back from the scheduler
    (a task's events reach it before its result)."""

    def __init__(self, client, token: str, labels: dict[str, str]):
        self.client, self.token, self.labels = client, token, labels
        self.shown: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def __enter__(self):
        self.client.subscribe_topic(WARNING_TOPIC, self.show)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(Exception):  # the cluster may be gone (Ctrl-C)
            if exc[0] is None:
                for event in self.client.get_events(WARNING_TOPIC):
                    self.show(event)
            self.client.unsubscribe_topic(WARNING_TOPIC)

    def show(self, event) -> None:
        _, msg = event
        key = msg.get("key", "")
        if not key.endswith(f"-{self.token}"):
            return
        label = self.labels.get(key) or \
            key.removesuffix(f"-{self.token}").removeprefix("latency-")
        with self.lock:
            if (label, msg["message"]) in self.shown:
                return
            self.shown.add((label, msg["message"]))
        warnings.warn_explicit(f"{label}: {msg['message']}", _category(msg["category"]),
                               msg["filename"], msg["lineno"])


def _category(name: str) -> type[Warning]:
    """The warning class ``module:qualname``, or ``UserWarning`` when it cannot be found here."""
    module, _, qualname = name.partition(":")
    with contextlib.suppress(Exception):
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        if isinstance(found, type) and issubclass(found, Warning):
            return found
    return UserWarning


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not in a Dask worker
        return None


# -- executors -------------------------------------------------------------------------------------

def run_in_process(plan_: Plan, *, checkpoint_every: float = 0.0, verbose: int = 0,
                   report: Report | None = None, failed: Failed | None = None) -> list[dict]:
    """Execute ``plan_`` here, run after run (see the module docstring); returns the records.
    A run that fails with a user error (:data:`USER_ERRORS`) is passed to ``failed`` and the
    others go on; without ``failed``, and for any other error, the error propagates."""
    uses, done, records = plan_.uses(), {}, []
    options = get_engine_options().as_dict()

    def fitted(name: str) -> Fit:
        if name not in done:
            task = plan_.fits[name]
            try:
                teacher = fitted(task.teacher) if task.teacher else None
                done[name] = fit_task(task, teacher, every=checkpoint_every, threads=None,
                                      options=options, verbose=verbose)
            except USER_ERRORS as err:
                done[name] = err
            finally:
                release(task.teacher)
        if isinstance(done[name], BaseException):
            raise done[name]
        return done[name]

    def release(name: str | None) -> None:
        if name is not None:
            uses[name] -= 1
            if uses[name] <= 0:
                done.pop(name, None)

    for task in plan_.runs:
        start = time.perf_counter()
        try:
            _, record = score_task(task, fitted(task.fit), threads=None, options=options,
                                   execution={"executor": "in-process", "workers": 1},
                                   defer=False, verbose=verbose)
            task.unit.finished(record)
        except USER_ERRORS as err:
            if failed is None:
                raise
            failed(task.unit, err)
            continue
        finally:
            release(task.fit)
        records.append(record)
        if report is not None:
            report(task.unit, record, time.perf_counter() - start)
    return records


def _resources(spec: RunSpec) -> dict | None:
    """A run that asks for CUDA needs a worker started with ``--resources GPU=1``."""
    return {"GPU": 1} if str(spec.device).startswith("cuda") else None


def run_on_dask(client, plan_: Plan, *, threads: int | None = None,
                latency_threads: int | None = None, checkpoint_every: float = 0.0,
                report: Report | None = None, failed: Failed | None = None,
                pending: list[tuple[Unit, bytes]] = (), time_latency: bool = True) -> list[dict]:
    """Execute ``plan_`` on the Dask ``client``'s cluster (see the module docstring), then time
    the latency of its runs (and of the ``pending`` runs an interrupted grid left, as
    :func:`pending_bytes` reads them), one at a time; returns the records in plan order.
    ``threads``: PyTorch threads per training task (``None``: as the workers have them);
    ``latency_threads``: for timing. Without ``time_latency`` the trained runs stay in
    ``pending/`` and nothing is returned: for a ``LocalCluster``, :func:`finish_pending` times
    them once the cluster is closed, since on the cluster's own machine a scheduler and idle
    workers still running made batch-1 latencies up to twice as long (ShuffleNet-V2: 17.6 ms
    against 8.6 ms). A run that fails for good is passed to ``failed`` (without it, its error
    propagates once the others are done)."""
    from distributed import as_completed, get_task_stream

    from .cluster import check_workers

    units = [run.unit for run in plan_.runs] + [unit for unit, _ in pending]
    check_workers(client, units)
    options = get_engine_options().as_dict()
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    execution = {"executor": "dask", "scheduler": client.scheduler.address, "workers": workers}
    token = uuid.uuid4().hex[:6]  # keys of this grid never meet another client's
    work = {name: expected_work(task.unit.spec) for name, task in plan_.fits.items()}
    # the order fits should start in: teachers, then the largest fits
    waiting = dict(sorted(plan_.fits.items(), key=lambda item: (not item[1].is_teacher,
                                                                -work[item[0]])))
    scores = {}
    for task in plan_.runs:
        scores.setdefault(task.fit, []).append(task)
    gpu = any(_resources(task.unit.spec) for task in plan_.runs)
    # futures of fits that a waiting student still needs (only those: a fit the client lets go
    # is dropped from the cluster once the tasks that need it are done)
    teachers: dict[str, object] = {}
    runs, started = {}, {}
    blocks: dict[str, set] = {}  # a sent fit and its score tasks, until all are done: one slot
    owner = {}  # future -> its block
    done = as_completed(loop=client.loop)
    most_slots = [0]  # the cluster's largest size while training: a worker may die or join

    labels: dict[str, str] = {}  # task key -> the run its warnings name

    def send(name: str, function, *args, label: str, **kwargs):
        future = client.submit(function, *args, threads=threads, options=options, pure=False,
                               **kwargs)
        labels[future.key] = label
        blocks.setdefault(name, set()).add(future)
        owner[future] = name
        done.add(future)
        return future

    def submit_ready() -> None:
        """Send the next fits while the cluster has a free slot (see :func:`_slots`); a student
        waits until its teacher is done. A slot stays taken until the fit's score tasks are done
        too, so the next fit goes to the worker that is idle then."""
        slots = _slots(client, gpu)
        most_slots[0] = max(most_slots[0], slots)
        for name, task in list(waiting.items()):
            if len(blocks) >= slots:
                break
            if task.teacher and (task.teacher in waiting or not teachers[task.teacher].done()):
                continue
            del waiting[name]
            spec = task.unit.spec
            fit = send(name, fit_task, task, teachers.get(task.teacher), every=checkpoint_every,
                       key=f"{name}-{token}", resources=_resources(spec),
                       label=f"{'teacher' if task.is_teacher else spec.method} seed {spec.seed}")
            if task.is_teacher:
                teachers[name] = fit
            for run in scores.pop(name, []):
                score = send(name, score_task, run, fit, execution=execution, defer=True,
                             key=f"score-{run.unit.name}-{token}",
                             label=f"{run.unit.spec.method} seed {run.unit.spec.seed}",
                             resources=_resources(run.unit.spec), priority=1)
                runs[score] = run
                started[run.unit.name] = time.perf_counter()
        needed = {task.teacher for task in waiting.values()}
        for name in [n for n in teachers if n not in needed]:
            del teachers[name]

    with _WarningRelay(client, token, labels):
        errors, trained = [], []
        # what the workers computed, for the summary (collected only when training ends normally)
        stream = get_task_stream(client).__enter__()
        training = time.perf_counter()
        submit_ready()
        for future in done:
            name = owner.pop(future)
            blocks[name].discard(future)
            if not blocks[name]:
                del blocks[name]
            submit_ready()  # a slot may be free, or a teacher done
            if future not in runs:  # a fit
                task = plan_.fits[name]
                if task.is_teacher and future.status == "finished":
                    print(f"teacher of {task.unit.spec.method} seed {task.unit.spec.seed} trained "
                          f"({future.key})", flush=True)
                continue
            task = runs.pop(future)
            if future.status != "finished":
                error = future.exception()
                errors.append(error)
                if failed is not None:
                    failed(task.unit, error)
                continue
            kept, record = future.result()
            if task.unit.out is not None:
                try:
                    with _cannot_write(task.unit.pending):
                        atomic_write(task.unit.pending, kept)
                except BenchError as error:
                    errors.append(error)
                    if failed is not None:
                        failed(task.unit, error)
                    continue
                _remove(task.unit.checkpoints)
            trained.append((task.unit, future))
            if report is not None:
                report(task.unit, record, time.perf_counter() - started[task.unit.name])
        wall = time.perf_counter() - training
        stream.__exit__(None, None, None)
        if trained or errors:
            now = _slots(client, gpu)
            print(busy_summary(stream.data, token, max(most_slots[0], now), wall, now),
                  flush=True)
        order = {id(unit): i for i, unit in enumerate(units)}
        trained = sorted([*trained, *pending], key=lambda item: order[id(item[0])])
        records = _time_latency(client, trained, latency_threads, token) if time_latency else []
    if errors and failed is None:
        raise errors[0]
    return records


def busy_summary(stream: list[dict], token: str, slots: int, wall: float,
                 slots_at_end: int | None = None) -> str:
    """How much of the training phase's wall time the cluster's slots spent computing this
    grid's tasks (Dask's task stream), so a user sees what waiting costs: for a teacher, for the
    last long fit, for the scheduler, for transfers between workers. ``slots``: the most the
    cluster had while training (a worker that died is not in the count at the end, but its
    computing is in the stream)."""
    ours = [task for task in stream if str(task["key"]).endswith(token)]
    busy = sum(part["stop"] - part["start"] for task in ours
               for part in task.get("startstops", ()) if part["action"] == "compute")
    share = busy / (slots * wall) if wall > 0 else 0.0
    fewer = f", {slots_at_end} at the end" if slots_at_end is not None \
        and slots_at_end < slots else ""
    return (f"training took {wall:.0f} s on {slots} slot(s){fewer}, which computed {busy:.0f} s "
            f"of tasks: busy {share:.0%} of the time (the rest is waiting for a teacher or the "
            "last fits, scheduling and transfers)")


def _slots(client, gpu: bool) -> int:
    """How many fits the cluster trains at once: its worker threads, or for CUDA runs its GPUs.
    Fits are sent only while a slot is free: Dask hands a task to a worker as soon as it is
    sent, and with durations it cannot know yet (every fit is a task group of its own) it did
    not move queued fits to a worker that fell idle: on the 13-method quick board one worker
    waited 24 s while the other still held five fits."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if gpu:
        return max(1, int(sum(w.get("resources", {}).get("GPU", 0) for w in workers)))
    return max(1, sum(w.get("nthreads", 1) for w in workers))


def _time_latency(client, trained: list, threads: int | None, token: str) -> list[dict]:
    """Each trained network's latency, one task at a time, nothing else running (in this grid)."""
    if not trained:
        return []
    start = time.perf_counter()
    records = []
    for unit, kept in trained:
        # ``kept``: a score task's future (its network is still on the cluster) or pending bytes
        if isinstance(kept, bytes):  # scattered: in a task's graph Dask warns of its size
            kept = client.scatter(kept, hash=False)
        record = client.submit(latency_task, kept, threads=threads, pure=False,
                               key=f"latency-{unit.name}-{token}",
                               resources=_resources(unit.spec)).result()
        unit.finished(record)
        records.append(record)
    print(f"timed the latency of {len(records)} network(s), one at a time "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    return records


# -- the Python API ----------------------------------------------------------------------------

def run_grid(specs: list[RunSpec], *, client=None, estimator: EmotionClassifier | None = None,
             verbose: int = 0) -> list[dict]:
    """Run ``specs`` as one grid (a split's teacher trained once, identical fits shared) and
    return their records in order, without writing anything: in this process, or on the Dask
    cluster of ``client`` (a ``distributed.Client``). ``estimator``: an unregistered method's
    template for every spec (cloned per run)."""
    units = [Unit(spec, estimator=estimator) for spec in specs]
    if client is None:
        return run_in_process(plan(units), verbose=verbose)
    return run_on_dask(client, plan(units))


def evaluate(method, dataset: str = "synthetic", classes: int = 4, seeds=None, *, root=None,
             preset: str = "quick", params: dict | None = None, device: str = "auto",
             calibration_share: float = CALIBRATION_SHARE, profile_size: int | None = None,
             latency: bool = True, dataset_options: dict | None = None, label_noise: float = 0.0,
             verbose: int = 0, client=None) -> list[dict]:
    """Score ``method`` (a registered name or an :class:`EmotionClassifier`) on ``dataset`` over
    ``seeds`` (default: the preset's) and return one record per seed; with ``client`` (a
    ``distributed.Client``) the seeds run on its Dask cluster.

    For example ``evaluate("shufflenet-v2", "synthetic", classes=4, seeds=[0, 1], preset="quick")``
    returns two records whose ``"accuracy"`` and ``"macro_f1"`` differ by subject split.
    """
    estimator = method if isinstance(method, EmotionClassifier) else None
    name = type(method).__name__ if estimator is not None else method
    if estimator is None:
        method_info(name)  # fail early on an unknown name
    dataset_info(dataset)
    resolve_root(dataset, root)
    seeds = list(get_preset(preset).seeds if seeds is None else seeds)
    specs = [RunSpec(name, dataset, classes, int(seed), None if root is None else str(root),
                     preset, dict(params or {}), device, calibration_share, profile_size,
                     latency, dict(dataset_options or {}), label_noise) for seed in seeds]
    return run_grid(specs, client=client, estimator=estimator, verbose=verbose)
