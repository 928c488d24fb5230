"""Dask clusters for ``bench run``: a ``LocalCluster`` on this machine, or an existing scheduler.

Workers reach the data themselves: every worker opens the dataset from the run's data root, so
the root (and a teacher's pre-training root) must be a path every worker can read, typically on a
shared filesystem; a relative root is read from each worker's working directory. Each worker keeps
its own decoded-image cache in its ``$BENCH_CACHE`` (shared or per machine; entries are written
atomically, so a shared one is safe). Records, pending runs and the board are written by the
caller into ``--out``; checkpoints by the workers into ``<out>/checkpoints``, so a run retried on
another worker resumes from its last checkpoint when ``--out`` is shared too (otherwise it starts
over). Nothing is shipped but the runs' settings, fitted models and results. See docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from .errors import BenchError

#: where ``bench run`` looks for a scheduler address when ``--scheduler`` is not given (then in
#: Dask's own configuration, ``scheduler-address``)
SCHEDULER_ENV = "BENCH_SCHEDULER"
DOCS = "docs/cluster.md"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise BenchError("running several runs at once needs Dask: pip install "
                         "'dask[distributed]' (or run one at a time with --jobs 1)") from None
    return distributed


def scheduler_address(given: str | None = None) -> str | None:
    """``given``, else ``$BENCH_SCHEDULER``, else Dask's ``scheduler-address`` setting, else
    ``None`` (a cluster on this machine)."""
    if given:
        return given
    if os.environ.get(SCHEDULER_ENV):
        return os.environ[SCHEDULER_ENV]
    with contextlib.suppress(ImportError):
        import dask

        return dask.config.get("scheduler-address", None)
    return None


def unreachable(address: str, reason: str) -> BenchError:
    return BenchError(f"cannot reach the Dask scheduler at {address} ({reason}); is it the "
                      "address the scheduler printed (port 8786 by default; 8787 is its "
                      "dashboard)? Start it with `dask scheduler` and workers with `dask worker "
                      f"{address}`, or run on this machine with --jobs N (see {DOCS})")


def check_scheduler(address: str) -> None:
    """Ask ``address`` who it is, within Dask's connect timeout, before a client connects: a
    client's handshake with a server that accepts the connection but never replies (another
    service on that port) does not end, and a worker's address would be taken for a scheduler's."""
    import asyncio

    import dask
    import distributed
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import backends
    from distributed.core import rpc

    try:
        scheme, location = parse_address(address)  # no scheme: Dask's default, tcp
    except ValueError as err:
        raise unreachable(address, str(err)) from None
    if scheme not in backends:
        raise BenchError(f"--scheduler {address}: Dask has no protocol {scheme!r}; its "
                         f"addresses start with {', '.join(f'{b}://' for b in sorted(backends))} "
                         "(tcp:// when none is given)")
    if scheme not in ("tcp", "tls"):
        return
    address = f"{scheme}://{location}"

    seconds = dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    args = distributed.Security().get_connection_args("client")

    async def identity():
        async with rpc(address, timeout=seconds, connection_args=args) as server:
            return await server.identity()

    try:
        kind = asyncio.run(asyncio.wait_for(identity(), seconds)).get("type")
    except (TimeoutError, asyncio.TimeoutError):
        reason = "no answer"
    except OSError as err:  # refused, unreachable
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    except Exception:  # noqa: BLE001 - an answer that is not Dask's protocol
        reason = "no Dask reply"
    else:
        reason = None
    if reason is not None:
        raise unreachable(address, f"{reason} within {seconds:g} s")
    if kind != "Scheduler":
        raise BenchError(f"{address} is a Dask {kind or 'server'}, not a scheduler; give the "
                         f"address the scheduler printed at its start (see {DOCS})")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, jobs: int = 2, gpu: bool = False) -> Iterator:
    """A Dask client: connected to ``scheduler``, or to a ``LocalCluster`` of ``jobs`` one-task
    workers started here (each with a ``GPU`` resource when ``gpu``) and closed on exit, which
    stops its workers (also on Ctrl-C or SIGTERM)."""
    distributed = _distributed()
    if scheduler:
        check_scheduler(scheduler)
        try:
            client = distributed.Client(scheduler, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise unreachable(scheduler, str(err).splitlines()[0] if str(err)
                              else type(err).__name__) from None
        with client:
            yield client
        return
    # worker logs (heartbeats failing while the cluster stops) would bury bench's own output;
    # a run that fails comes back as its task's error
    cluster = distributed.LocalCluster(
        n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.CRITICAL, resources={"GPU": 1} if gpu else None)
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def _unreadable(roots: list[tuple[str, str | None]]) -> list[str]:
    """Run on a worker: the data roots of ``roots`` it cannot read, as error messages."""
    from .data import resolve_root

    problems = []
    for dataset, root in roots:
        try:
            resolve_root(dataset, root)
        except BenchError as err:
            problems.append(str(err).split(". Expected layout")[0])
    return problems


def check_workers(client, units) -> None:
    """Fail before any work when the cluster has no worker, a worker cannot read a run's data
    root, or runs ask for CUDA and no worker offers a ``GPU`` resource."""
    from .pretraining import pretraining_roots
    from .protocol import estimator_params
    from .registry import method_info

    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        raise BenchError(f"the Dask scheduler {client.scheduler.address} has no workers; start "
                         f"some with `dask worker {client.scheduler.address}` (see {DOCS})")
    roots = set()
    for unit in units:
        spec = unit.spec
        roots.add((spec.dataset, spec.root))
        if unit.estimator is None:
            cls = method_info(spec.method).estimator
            roots.update(pretraining_roots(cls, estimator_params(spec)))
    problems = client.run(_unreadable, sorted(roots, key=repr))
    for address, errors in sorted(problems.items()):
        if errors:
            raise BenchError(f"Dask worker {address} cannot read the data: {errors[0]}; workers "
                             "open the data themselves, so give --data-root as a path every "
                             f"worker can read (e.g. an absolute path on a shared filesystem; "
                             f"see {DOCS})")
    if any(str(u.spec.device).startswith("cuda") for u in units) and not any(
            w.get("resources", {}).get("GPU") for w in workers.values()):
        raise BenchError("the runs ask for CUDA, but no Dask worker offers a GPU resource; start "
                         f"workers with `dask worker ADDRESS --resources GPU=1` (see {DOCS})")
