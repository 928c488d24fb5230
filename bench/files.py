"""Writing files so that nothing is ever half-written, and tables that gain rows rather than lose
them: the lowest layer, importing only ``bench.errors`` (records, checkpoints, caches, prepared
crops, profiles and boards all write through it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from .errors import BenchError


def _file_mode() -> int:
    """The mode a new file gets under the current umask (mkstemp would make it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@contextlib.contextmanager
def locked(paths, what: str = "it"):
    """Hold an exclusive lock on each of ``paths`` (files made for the purpose) for the block, so
    that two processes never work on the same thing; a lock held elsewhere is a
    :class:`BenchError` naming the process that holds it. The operating system drops the locks of
    a process that dies, so a killed run never leaves one behind. (No locking where ``fcntl`` is
    missing, i.e. on Windows.)"""
    try:
        import fcntl
    except ImportError:
        yield
        return
    held = []
    try:
        for path in map(Path, paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                handle.close()
                raise BenchError(f"{owner} is working on {what} ({path.stem}) right now; wait "
                                 "for it to finish, or use another --out") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()}")
            handle.flush()
            held.append((path, handle))
        yield
    finally:
        for path, handle in held:
            with contextlib.suppress(OSError):
                path.unlink()  # while still locked: no one can take a lock on a removed file
            handle.close()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when nothing else is left there


def check_writable(folder, *subfolders: str) -> Path:
    """Make sure ``folder`` (and its ``subfolders``) can be written before any work is done, so
    that a mistyped, read-only or full output is found now and not after an hour of training.
    Folders made for the test are removed again: a refused command leaves nothing behind."""
    folder = Path(folder)
    created = []
    try:
        for path in (folder, *(folder / s for s in subfolders)):
            if path.exists() and not path.is_dir():
                raise BenchError(f"{path} is a file; the output must be a folder (--out)")
            try:
                missing = [p for p in (path, *path.parents) if not p.exists()]
                path.mkdir(parents=True, exist_ok=True)
                created += reversed(missing)
                fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test.", suffix=".tmp")
                os.close(fd)
                os.unlink(probe)
            except OSError as err:
                raise BenchError(f"cannot write to {path} ({err.strerror or err}); choose another "
                                 "--out") from None
    finally:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
    return folder


def read_table(path, columns) -> pd.DataFrame | None:
    """The CSV table at ``path`` (None when there is none yet), read before any work is done so
    that a damaged file is found at once rather than after training: a file that is not a CSV
    with ``columns`` is a :class:`BenchError` naming it."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # pandas' parser errors are ValueErrors
        raise BenchError(f"{path} is not a readable table ({type(err).__name__}: {err}); move it "
                         "away or delete it, and run again") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BenchError(f"{path} lacks the columns {', '.join(missing)}; move it away or delete "
                         "it, and run again")
    return table


def merge_table(existing: pd.DataFrame | None, new: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``existing`` with its rows of the same ``keys`` as a row of ``new`` replaced by ``new``'s;
    every other row is kept (a command that measures two methods never drops the others)."""
    if existing is None or existing.empty:
        return new
    replaced = existing[keys].astype(str).apply(tuple, axis=1).isin(
        set(new[keys].astype(str).apply(tuple, axis=1)))
    merged = pd.concat([existing[~replaced], new], ignore_index=True)
    return merged[list(new.columns) + [c for c in merged.columns if c not in new.columns]]
