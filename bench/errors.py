"""User-facing errors.

A :class:`BenchError` is a mistake the user can fix (a wrong option, a missing folder, a malformed
file). The CLI prints its message on one line and exits with status 2, without a traceback; library
callers can catch it like any other exception.
"""


class BenchError(Exception):
    """An error caused by the user's input, with a message that says how to fix it."""


class DatasetError(BenchError, FileNotFoundError):
    """A dataset cannot be found or read in the expected layout."""


class DataWarning(UserWarning):
    """A problem with the data that did not stop it loading (skipped files, unreadable images, a
    class missing from a split). The caller of ``bench run`` lists the data and prepares every
    split before any run starts, and shows these; Dask workers, which do it again for every
    fit, keep quiet about them."""
