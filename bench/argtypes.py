"""Command-line value types, shared by every ``bench`` command.

Each is an ``argparse`` ``type=``: it turns the text into a value or raises
``argparse.ArgumentTypeError`` with a message that says what was expected, so a malformed option
ends with argparse's usage line and one error line (exit status 2). :func:`number` makes the
numeric ones from their bounds; list-valued options (``--seeds``, ``--methods``, ``--param``) are
parsed by the functions at the end, which raise :class:`~bench.errors.BenchError`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from .errors import BenchError
from .estimator import MAX_SEED  # a seed seeds NumPy's generators: 0 .. 2**32 - 1


def number(kind: type = int, *, low: float | None = None, high: float | None = None,
           below_high: bool = False, what: str = "") -> Callable[[str], int | float]:
    """An argparse type for an ``int`` or ``float`` in ``[low, high]`` (``[low, high)`` with
    ``below_high``); ``what`` names the unit in messages (``"seconds"``)."""
    noun = {int: "an integer", float: "a number"}[kind] + (f" of {what}" if what else "")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if value != value:  # NaN passes every comparison below
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}")
        too_high = high is not None and (value >= high if below_high else value > high)
        if (low is not None and value < low) or too_high:
            bounds = [f"at least {low:g}"] if low is not None else []
            if high is not None:
                bounds.append(f"below {high:g}" if below_high else f"at most {high:g}")
            raise argparse.ArgumentTypeError(f"must be {' and '.join(bounds)}, got {text}")
        return value

    return parse


positive = number(int, low=1)
seconds = number(float, low=0, what="seconds")
fraction = number(float, low=0, high=1, below_high=True)  # e.g. a share of training labels
unit_interval = number(float, low=0, high=1)


def jobs(text: str) -> int | str:
    """``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        return positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a positive integer") \
            from None


def folder(text: str) -> str:
    """A folder path; an empty one would silently mean the working directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a folder (e.g. leaderboards)")
    return text


def width_height(text: str) -> tuple[int, int]:
    """``128x64`` -> ``(128, 64)``, both at least 8."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 128x64") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"must be at least 8x8, got {text}")
    return width, height


def batch_sizes(text: str) -> tuple[int, int]:
    """``1`` or ``1,N``: batch-1 latency, then throughput at batch ``N``."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,32") from None
    if not sizes or sizes[0] != 1 or len(sizes) > 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or 1,N (N >= 1), got {text!r}")
    return (1, sizes[-1])


def floats(text: str) -> list[float]:
    """``0.9,0.95`` -> ``[0.9, 0.95]``."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers such as "
                                         "0.8,0.9,0.95") from None


# -- list-valued options, checked against the registries ---------------------------------------

def names(text: str | None, valid: list[str], what: str) -> list[str]:
    """Comma-separated names, each one of ``valid`` (all of them when ``text`` is ``None``; an
    empty string, e.g. from an unset shell variable, is refused rather than read as "all")."""
    if text is None:
        return list(valid)
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in valid]
    if unknown or not chosen:
        raise BenchError(f"unknown {what} {', '.join(unknown) or repr(text)}; valid {what}s: "
                         f"{', '.join(valid)}")
    return list(dict.fromkeys(chosen))


#: more splits than anyone runs; a typo such as 0-200000000 would otherwise fill the memory
MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) or a mix, as a list of distinct ints."""
    seeds = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                if hi - lo >= MAX_SEEDS:
                    raise BenchError(f"--seeds {part} names {hi - lo + 1} splits; at most "
                                     f"{MAX_SEEDS} are run at once")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise BenchError(f"malformed --seeds {text!r}; use comma-separated integers or ranges, "
                         "e.g. 0,1,2 or 0-4") from None
    if any(s < 0 or s > MAX_SEED for s in seeds):
        raise BenchError(f"--seeds must be between 0 and {MAX_SEED} (NumPy's seed range), got "
                         f"{text!r}")
    if len(set(seeds)) > MAX_SEEDS:
        raise BenchError(f"--seeds names {len(set(seeds))} splits; at most {MAX_SEEDS} are run at once")
    return list(dict.fromkeys(seeds))


def parse_params(items: list[str] | None) -> dict:
    """``["class_balance=equal", 'teacher_params={"epochs": 5}']`` -> a dict. Values are read
    as JSON when they parse (numbers, true/false/null, objects, lists), else kept as strings."""
    params = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise BenchError(f"malformed --param {item!r}; use NAME=VALUE, e.g. epochs=5")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if text.lstrip()[:1] in "{[":
                raise BenchError(f"--param {name}: {text!r} is not valid JSON") from None
            value = text
        params[name.strip()] = value
    return params
