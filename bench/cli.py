"""The ``bench`` command line: ``run``, ``stream``, ``profile`` (:mod:`bench.profile_command`),
``prepare``, ``list`` and ``leaderboard``.

User mistakes (unknown names, missing data, malformed options) end with a one-line message and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import pandas as pd
import torch

from . import __version__
from .argtypes import (
    batch_sizes,
    floats,
    folder,
    fraction,
    jobs,
    names,
    number,
    parse_params,
    parse_seeds,
    positive,
    seconds,
    unit_interval,
    width_height,
)
from .classes import CLASS_SETS
from .cluster import dask_client, scheduler_address
from .data import dataset_info, dataset_label, list_datasets, list_samples, resolve_root
from .device import check_device_name, configure_threads, resolve_device, usable_cpus
from .engine import engine_options
from .errors import BenchError
from .estimator import MAX_SEED
from .eyecrop import DETECTORS, EyeCropper
from .files import atomic_write, check_writable, locked, merge_table, read_table
from .leaderboard import write_all, write_curves, write_leaderboard
from .plots import stream_png
from .prepare import FACE_DATASETS, MUG_LAYOUT, ON_MISS, prepare_emug, prepare_eyes
from .presets import PRESETS, get_preset
from .profile_command import cmd_profile, threads_for_timing
from .profiling import machine_busy
from .protocol import RunSpec, estimator_params, expected_settings, retime_latency, settings_of
from .records import board_name, load_records, read_record, run_path, settings_diff, write_record
from .registry import BUILTIN_PACKAGES, CALIBRATION_FILTERS, get_estimator, list_methods, method_info
from .runner import (
    USER_ERRORS,
    Unit,
    discard,
    finish_pending,
    pending_bytes,
    plan,
    run_in_process,
    run_on_dask,
)
from .stream import COLUMNS as STREAM_COLUMNS
from .stream import KEYS as STREAM_KEYS
from .stream import SWEEP as STREAM_SWEEP
from .stream import check_streaming, stream_benchmark, stream_summary, timing_quality

DEFAULT_OUT = "leaderboards"


def _prepare_parser(sub) -> None:
    prep = sub.add_parser("prepare", help="make eye-region datasets from face datasets")
    kinds = prep.add_subparsers(dest="kind", required=True, metavar="{eyes,emug}")
    eyes = kinds.add_parser("eyes", help="eye crops of a face dataset (ckplus, jaffe, rafdb, "
                            "fer2013 or a face folder) in the REED layout")
    eyes.add_argument("--dataset", required=True, choices=FACE_DATASETS)
    eyes.add_argument("--data-root", help="dataset folder (default: $BENCH_DATA/<dataset>)")
    emug = kinds.add_parser("emug", help="EMUG: eye crops of the MUG faces, frames without eyes "
                            "dropped")
    emug.add_argument("--mug-root", required=True, help=f"the MUG folder: {MUG_LAYOUT}")
    for parser, miss in ((eyes, "fallback"), (emug, "drop")):
        parser.add_argument("--out", type=folder, required=True,
                            help="output folder (REED layout + manifest.csv)")
        parser.add_argument("--classes", type=int, default=7, choices=sorted(CLASS_SETS),
                            help="emotions to keep (default 7)")
        parser.add_argument("--detector", default="haar", choices=DETECTORS,
                            help="haar: OpenCV cascades; fixed: the upper face band (default haar)")
        parser.add_argument("--margin", type=unit_interval, default=0.15,
                            help="margin around both eyes, fraction of their width (default 0.15)")
        parser.add_argument("--size", type=width_height, default=(128, 64), metavar="WxH",
                            help="crop size in pixels (default 128x64)")
        parser.add_argument("--on-miss", default=miss, choices=ON_MISS,
                            help=f"when no eyes are found: fixed band or drop (default {miss})")
        parser.add_argument("--preview", metavar="SHEET.png",
                            help="write a contact sheet of random crops beside their faces")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _data_args(parser) -> None:
    parser.add_argument("--dataset", default="synthetic", choices=list_datasets(),
                        help="dataset (default: synthetic, generated on the fly)")
    parser.add_argument("--classes", type=int, default=4, choices=sorted(CLASS_SETS),
                        help="4 (anger, happiness, surprise, neutral) or 7 basic emotions")
    parser.add_argument("--data-root", help="dataset folder (default: $BENCH_DATA/<dataset>)")


def _training_args(parser) -> None:
    parser.add_argument("--preset", default="paper", choices=list(PRESETS),
                        help="training budget: smoke (seconds), quick (minutes), paper (the "
                        "paper's recipe; default)")
    parser.add_argument("--epochs", type=positive, help="override the preset's epochs")
    parser.add_argument("--image-size", type=positive, metavar="PX",
                        help="override the preset's input size for training and prediction (cost "
                        "is always measured at each method's native size, see `bench profile "
                        "--profile-size`)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="start from ImageNet weights (default: the preset's; paper: yes)")
    parser.add_argument("--teacher-pretrain", metavar="DATASET", choices=(*FACE_DATASETS, "none"),
                        help="pre-train every teacher (and the ldgn row) on this face dataset "
                        f"first ({', '.join(FACE_DATASETS)}); only subjects outside the split's "
                        "validation and test subjects are used. Default: none, except that the "
                        "quick preset on eye crops made by `bench prepare eyes` uses the face "
                        "set they were cut from; 'none' turns that off")
    parser.add_argument("--teacher-pretrain-root", metavar="DIR",
                        help="its folder (default: $BENCH_DATA/<dataset>)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="set an estimator parameter of every method that has it, e.g. "
                        "--param class_balance=equal (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _engine_args(parser)


def _engine_args(parser) -> None:
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="NHWC memory format for every network (--no-channels-last: NCHW for "
                        "every network; default: each method's own choice, NHWC where it "
                        "measured faster on a CPU)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                        help="float16 autocast on CUDA (default on; no effect on the CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--threads", type=positive,
                        help="CPU threads for PyTorch (default: the CPUs this process may use)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench", description="Benchmark eye-region emotion recognition methods: accuracy "
        "on subject-disjoint splits, and cost, side by side.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train and score methods on a dataset, write the leaderboard")
    _data_args(run)
    run.add_argument("--methods", help="comma-separated method names (default: all registered)")
    _training_args(run)
    run.add_argument("--seeds", help="subject splits to run, e.g. 0,1,2 or 0-4 (default: preset's)")
    run.add_argument("--out", type=folder, default=DEFAULT_OUT,
                     help=f"output folder (default: {DEFAULT_OUT}/)")
    run.add_argument("--label-noise", type=fraction, default=0.0, metavar="P",
                     help="replace a fraction P of the training labels by another class (seeded; "
                     "validation and test stay clean); results go to a board of their own")
    run.add_argument("--strict", action="store_true",
                     help="stop on unreadable image files instead of skipping and counting them")
    run.add_argument("--force", action="store_true",
                     help="rerun runs whose records already exist with the same settings")
    run.add_argument("--jobs", type=jobs, default="auto",
                     help="runs trained at once by a Dask LocalCluster of this many workers, "
                     "their threads split between them; latency is then timed afterwards, one "
                     "network at a time; 1 runs everything in this process (default auto: 1 on "
                     "CUDA; on a CPU the preset's choice, quick: one per CPU)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="send the runs to the Dask scheduler at ADDRESS (e.g. "
                     "tcp://10.0.0.5:8786) instead of this machine; default $BENCH_SCHEDULER or "
                     "Dask's scheduler-address setting (see docs/cluster.md)")
    run.add_argument("--checkpoint-every", type=seconds, default=60.0, metavar="SECONDS",
                     help="save a run in progress at the first epoch end after this many seconds "
                     "since its last save, so a killed run resumes there (default 60; 0: every "
                     "epoch)")

    stream = sub.add_parser("stream", help="replay test frames in order through a frame-skipping "
                            "method: frames per second and accuracy with and without skipping")
    _data_args(stream)
    stream.add_argument("--method", required=True, help="a method that skips frames (e.g. emo)")
    _training_args(stream)
    splits = stream.add_mutually_exclusive_group()
    splits.add_argument("--seeds", help="subject splits to replay, e.g. 0,1,2 or 0-4 (default: "
                        "preset's)")
    splits.add_argument("--seed", type=number(int, low=0, high=MAX_SEED),
                        help="one subject split (the same as --seeds N)")
    stream.add_argument("--thresholds", type=floats, help="comma-separated skip thresholds to sweep "
                        f"(default: {','.join(f'{t:g}' for t in STREAM_SWEEP)}); the threshold the "
                        "method chose on the validation subjects is always replayed too")
    stream.add_argument("--rounds", type=positive, default=3,
                        help="time the chosen threshold's speed-up this many times, each a no-skip "
                        "and a skipping pass back to back, and keep the median (default 3; the "
                        "sweep's rows are one pass each)")
    stream.add_argument("--out", type=folder, default=DEFAULT_OUT,
                        help="writes <out>/stream-<dataset>-<classes>.csv and .png (default: "
                        f"{DEFAULT_OUT}/)")

    prof = sub.add_parser("profile", help="params, MFLOPs and latency of methods (no training)")
    prof.add_argument("--methods", help="comma-separated method names (default: all)")
    prof.add_argument("--classes", type=int, default=4, choices=sorted(CLASS_SETS))
    prof.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    prof.add_argument("--profile-size", type=positive, metavar="PX",
                      help="input size the cost is measured at (default: each method's native "
                      "size, 224 for most), as `bench run` records it")
    prof.add_argument("--image-size", type=positive, dest="training_size", help=argparse.SUPPRESS)
    prof.add_argument("--batch-sizes", type=batch_sizes, default=(1, 32), metavar="1,N",
                      help="batch-1 latency, then throughput at batch N (default 1,32; 1 alone "
                      "skips throughput)")
    prof.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                      help="time every network in NHWC (--no-channels-last: NCHW; default: each "
                      "method's own format, as it trains and predicts)")
    prof.add_argument("--amp", action="store_true", help="time float16 autocast (CUDA only)")
    prof.add_argument("--min-time", type=seconds, default=1.0,
                      help="seconds of timed runs per measurement (default 1)")
    prof.add_argument("--rounds", type=positive, default=2,
                      help="time the whole list this many times, forward then reversed, and "
                      "keep the median (default 2: no network is always measured first, and "
                      "drift between rounds marks a figure unstable)")
    prof.add_argument("--out", type=folder, default=DEFAULT_OUT,
                      help=f"writes <out>/profile.csv (default: {DEFAULT_OUT}/)")

    _prepare_parser(sub)

    listing = sub.add_parser("list", help="registered methods, datasets and presets")
    listing.add_argument("patterns", nargs="*", metavar="PATTERN",
                         help="only methods whose names match a shell pattern, e.g. 'ours*'")
    listing.add_argument("--dataset", choices=list_datasets(),
                         help="only methods with the paper's reference numbers on this dataset")
    listing.add_argument("--calibration", choices=CALIBRATION_FILTERS,
                         help="only methods that declare this calibration kind (none: no "
                         "calibration; any: some)")

    plot = sub.add_parser("plot", help="pictures drawn from saved run records")
    plot.add_argument("what", choices=["curves"],
                      help="curves: each method's training histories per board (training loss, "
                      "validation accuracy and macro F1 per epoch, the chosen epoch marked)")
    plot.add_argument("--out", type=folder, default=DEFAULT_OUT,
                      help=f"folder with runs/; writes <out>/curves/ (default: {DEFAULT_OUT}/)")

    board = sub.add_parser("leaderboard", help="re-render leaderboards from saved run records")
    board.add_argument("--out", type=folder, default=DEFAULT_OUT,
                       help=f"folder with runs/ (default: {DEFAULT_OUT}/)")
    board.add_argument("--retime", action="store_true",
                       help="first time every record's latency again, here, one network at a "
                       "time (identical networks once), so rows from separate runs compare; "
                       "nothing is trained")
    return parser


def _kept_record(unit, settings: dict) -> str | None:
    """None when ``unit`` has no finished record; "same" when its record has ``settings`` (the
    run can be skipped); otherwise what differs (the run would replace a finished result)."""
    if not unit.path.exists():
        return None
    record, problem = read_record(unit.path)
    if problem:
        print(f"bench: warning: {unit.path} is not a run record ({problem}); it will be replaced",
              file=sys.stderr)
        return None
    return "same" if settings_of(record) == settings else settings_diff(settings_of(record), settings)


def _method_params(args, methods: list[str]) -> dict[str, dict]:
    """Check the data, device and options shared by ``run`` and ``stream`` before any work, and
    return each method's parameter overrides (``--epochs``, ``--image-size``, ``--param``, ...)."""
    _check_data(args.dataset, args.data_root, args.classes)
    if scheduler_address(getattr(args, "scheduler", None)) is None:
        resolve_device(args.device)
    else:  # resolved on the workers; check_workers refuses CUDA runs without a GPU worker
        check_device_name(args.device)
    preset = get_preset(args.preset)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("image_size", args.image_size),
                                   ("pretrained", args.pretrained)) if v is not None}
    extra = {**_teacher_pretraining(args), **parse_params(args.param)}
    accepted = {m: method_info(m).estimator().get_params() for m in methods}
    unused = sorted(k for k in extra if not any(k in a for a in accepted.values()))
    if unused:
        raise BenchError(f"no selected method has parameter(s) {', '.join(unused)}; see "
                         "`bench list` and the methods' docs")
    params = {m: {**overrides, **{k: v for k, v in extra.items() if k in accepted[m]}}
              for m in methods}
    for method in methods:  # bad overrides and missing ImageNet weights fail now, not at hour 5
        est = get_estimator(method, **estimator_params(RunSpec(method, preset=preset.name,
                                                               params=params[method])))
        try:
            est.check_params()
        except ValueError as err:  # scikit-learn's InvalidParameterError, or a teacher's
            raise BenchError(f"{method}: {err}") from None
        if est.pretrained:
            est.build_network(args.classes)
    print(f"preset {preset.name}: {preset.description}"
          + (f"; overrides {overrides}" if overrides else ""), flush=True)
    if preset.name == "paper" and not torch.cuda.is_available() and args.device in ("auto", "cpu"):
        print("note: the paper preset on a CPU takes hours per method; --preset quick runs in "
              "minutes", flush=True)
    return params


def _check_data(dataset: str, root, classes: int) -> None:
    """A missing dataset, or one in another layout, fails before any work, and before ImageNet
    weights are fetched (the user's first problem is the data)."""
    resolve_root(dataset, root)
    if dataset_info(dataset).needs_root:
        list_samples(dataset, root, classes=classes)


def _teacher_pretraining(args) -> dict:
    """``--teacher-pretrain`` as estimator parameters, its data checked before any work."""
    if args.teacher_pretrain_root and not args.teacher_pretrain:
        raise BenchError("--teacher-pretrain-root needs --teacher-pretrain DATASET")
    if not args.teacher_pretrain:
        return {}
    if args.teacher_pretrain == "none":
        return {"teacher_pretrain": None}
    _check_data(args.teacher_pretrain, args.teacher_pretrain_root, args.classes)
    root = args.teacher_pretrain_root
    return {"teacher_pretrain": args.teacher_pretrain,
            "teacher_pretrain_root": None if root is None else os.path.normpath(root)}


def _root(args) -> str | None:
    """The data root as given (normalised, not made absolute): records then name it relative to
    where ``bench`` ran, so committed records carry no path of the machine that made them."""
    return os.path.normpath(os.path.expanduser(args.data_root)) if args.data_root else None


def _report(unit: Unit, record: dict, seconds: float) -> None:
    print(f"{unit.spec.method} seed {unit.spec.seed}: accuracy {record['accuracy']:.3f}, macro "
          f"F1 {record['macro_f1']:.3f} ({seconds:.0f} s)", flush=True)


def _oom_hint(batch=None) -> str:
    return ("the GPU ran out of memory; use a smaller batch (--param batch_size=16, or half the "
            "preset's), a smaller --image-size, or --device cpu"
            + (f" (batch was {batch})" if batch else ""))


class _Failures(list):
    """Runs that failed for good: each reported when it fails, the others go on."""

    def __call__(self, unit: Unit, error: BaseException) -> None:
        self.append(error)
        where = f"{unit.spec.method} seed {unit.spec.seed}"
        if isinstance(error, torch.cuda.OutOfMemoryError):
            message = _oom_hint()
        elif isinstance(error, USER_ERRORS):
            message = str(error)
        else:  # a bug, or a worker that kept dying: the details matter
            message = "".join(traceback.format_exception(error)).rstrip()
        print(f"bench: error: {where}: {message}", file=sys.stderr, flush=True)

    def status(self) -> int:
        if not self:
            return 0
        return 2 if all(isinstance(e, USER_ERRORS) for e in self) else 1


def _job_count(args, units: list) -> int:
    """How many runs train at once: as asked, or by ``--jobs auto``; never more than runs."""
    if args.jobs != "auto":
        jobs = args.jobs
    elif resolve_device(args.device).type != "cpu":
        jobs = 1  # one accelerator: runs would queue for it and disturb each other's timing
    else:
        jobs = min(get_preset(args.preset).cpu_jobs or usable_cpus(), args.threads or usable_cpus())
    return max(1, min(jobs, len(units)))


def cmd_run(args) -> int:
    methods = names(args.methods, list_methods(), "method")
    seeds = parse_seeds(args.seeds) if args.seeds else list(get_preset(args.preset).seeds)
    out = check_writable(args.out, "runs")  # found now, not after the training
    params = _method_params(args, methods)
    root = _root(args)
    label = dataset_label(args.dataset, root)
    total_start = time.perf_counter()
    # seeds outside, methods inside: a split's teacher and data are shared by its methods, and
    # a complete first seed is on disk early
    units, all_units, conflicts = [], [], []
    for seed in seeds:
        for method in methods:
            spec = RunSpec(method, args.dataset, args.classes, seed, root, args.preset,
                           dict(params[method]), args.device, label_noise=args.label_noise,
                           strict=args.strict)
            unit = Unit(spec, run_path(out, label, args.classes, method, seed, args.label_noise),
                        out)
            all_units.append(unit)
            kept = None if args.force else _kept_record(unit, expected_settings(spec))
            if kept == "same":
                print(f"{method} seed {seed}: done before ({unit.path}), skipped; --force reruns",
                      flush=True)
                continue
            if kept is not None:
                conflicts.append(f"{unit.path} ({kept})")
            units.append(unit)
    if conflicts:
        more = f" and {len(conflicts) - 2} more" if len(conflicts) > 2 else ""
        raise BenchError(f"{out} holds {len(conflicts)} finished run(s) made with other settings "
                         f"that this run would replace: {'; '.join(conflicts[:2])}{more}; use "
                         "another --out to keep both, or --force to replace them")
    failures = _Failures()
    # two bench processes on one --out never train (or --force away) the same run
    with locked([u.lock for u in units], what=f"a run in {out}"):
        if args.force:
            for unit in units:
                discard(unit)
        _execute(args, units, failures)
    if failures and not any(u.path.exists() for u in all_units):
        return failures.status()
    _, markdown = write_leaderboard(out, label, args.classes, label_noise=args.label_noise)
    print()
    print(markdown)
    stem = out / board_name(label, args.classes, args.label_noise)
    extras = [p for p in (stem.with_name(f"{stem.name}-{s}.md") for s in ("ablation", "personalisation"))
              if p.exists()]
    for path in extras:
        print(path.read_text(encoding="utf-8"))
    pairwise = stem.with_name(f"{stem.name}-pairwise.md")
    extras += [pairwise] if pairwise.exists() else []
    print(f"wrote {stem}.md, .csv{''.join(', ' + p.name for p in extras)}; total time "
          f"{time.perf_counter() - total_start:.0f} s")
    if failures:
        print(f"bench: {len(failures)} run(s) failed (above); the board shows the others",
              file=sys.stderr)
    return failures.status()


def _execute(args, units: list[Unit], failed: _Failures) -> None:
    """Train ``units``: in this process, on a LocalCluster of ``--jobs`` workers, or on the
    cluster of ``--scheduler`` (see :mod:`bench.runner`)."""
    scheduler = scheduler_address(args.scheduler)
    if scheduler is None:
        units = finish_pending(units, _report)  # trained by an interrupted run
    else:
        pending, units = pending_bytes(units)
    jobs = _job_count(args, units) if scheduler is None else 1  # the cluster decides
    if not units and (scheduler is None or not pending):
        return
    if scheduler is None and jobs == 1:
        run_in_process(plan(units), checkpoint_every=args.checkpoint_every,
                       verbose=0 if args.quiet else 1, report=_report, failed=failed)
        return
    total = args.threads or usable_cpus()
    local = scheduler is None
    gpu = resolve_device(args.device).type == "cuda" if local else False
    grid = plan(units)
    with dask_client(scheduler, jobs=jobs, gpu=gpu) as client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        where = (f"a Dask LocalCluster of {jobs} workers of {max(1, total // jobs)} thread(s) "
                 "each" if local else f"the Dask scheduler {scheduler} ({workers} workers)")
        if local or workers:  # with none, run_on_dask's check says so in one line instead
            print(f"training {len(units)} run(s) on {where}; latency is timed afterwards, one "
                  "network at a time", flush=True)
        run_on_dask(client, grid, threads=max(1, total // jobs) if local else args.threads,
                    latency_threads=args.threads, checkpoint_every=args.checkpoint_every,
                    report=_report, failed=failed, pending=[] if local else pending,
                    time_latency=not local)
    if local:  # timed here, alone on the machine, once the cluster has stopped
        start = time.perf_counter()
        left = finish_pending(units, report=None)
        print(f"timed the latency of {len(units) - len(left)} network(s), one at a time, after "
              f"the cluster stopped ({time.perf_counter() - start:.0f} s)", flush=True)


def cmd_stream(args) -> int:
    names(args.method, list_methods(), "method")
    check_streaming(args.method)
    params = _method_params(args, [args.method])
    for threshold in args.thresholds or []:  # a threshold out of range fails before training
        try:
            get_estimator(args.method, skip_threshold=threshold).check_params()
        except ValueError as err:
            raise BenchError(f"--thresholds: {err}") from None
    if args.seed is not None:
        seeds = [args.seed]
    else:
        seeds = parse_seeds(args.seeds) if args.seeds else list(get_preset(args.preset).seeds)
    out = check_writable(args.out)
    path = out / f"stream-{args.dataset}-{args.classes}.csv"
    # a damaged file is found before training (a table of an earlier layout is kept and merged)
    existing = read_table(path, ["method", "threshold", "skip_rate"])
    device = resolve_device(args.device)
    busy = machine_busy() if device.type == "cpu" else None
    if busy:
        print(f"bench: warning: {busy}", file=sys.stderr)
    tables = []
    for seed in seeds:
        spec = RunSpec(args.method, args.dataset, args.classes, seed, _root(args), args.preset,
                       params[args.method], args.device)
        tables.append(stream_benchmark(spec, args.thresholds, verbose=0 if args.quiet else 1,
                                       rounds=args.rounds))
    table = pd.concat(tables, ignore_index=True)
    merged = merge_table(_stream_table(existing), table, STREAM_KEYS)
    atomic_write(path, merged.to_csv(index=False, float_format="%.6g"))
    picture = stream_png(merged, f"{dataset_label(args.dataset, _root(args))}, {args.classes} "
                         "classes")
    png = path.with_suffix(".png")
    if picture is not None:
        atomic_write(png, picture)
    print(f"Frame-by-frame replay of the test subjects' frames (batch 1, seed(s) "
          f"{', '.join(map(str, seeds))}): accuracy, macro F1, fps and FLOP-counted speed-up with "
          "skipping, and without it in the same run; chosen: the method's own threshold (with "
          "skip_threshold=auto, chosen on the validation subjects)")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print("\nAt the chosen threshold (cost: test accuracy points lost to skipping):")
    print(stream_summary(table).to_markdown(index=False, floatfmt=".3f"))
    print("note: wall-clock speed-ups (speedup) depend on the machine and its load; "
          "flops_speedup is counted, not timed" + (f" ({busy})" if busy else ""))
    quality = timing_quality(table)
    for line in quality[:1]:
        print(f"note: {line}")
    for line in quality[1:]:
        print(f"bench: warning: {line}", file=sys.stderr)
    print(f"wrote {path}" + (f" and {png}" if picture is not None else ""))
    return 0


def _stream_table(existing: pd.DataFrame | None) -> pd.DataFrame | None:
    """A stream table read back, ready to merge: columns of an earlier layout (no ``seed``) are
    added empty, so its rows are kept rather than replaced, and seeds compare as integers."""
    if existing is None:
        return None
    existing = existing.copy()
    for column in STREAM_COLUMNS:
        if column not in existing.columns:
            existing[column] = float("nan")
    existing["seed"] = pd.to_numeric(existing["seed"], errors="coerce").astype("Int64")
    return existing


def cmd_list(args) -> int:
    methods = list_methods(args.patterns, dataset=args.dataset, calibration=args.calibration)
    filtered = bool(args.patterns or args.dataset or args.calibration)
    if filtered and not methods:
        raise BenchError(f"no method matches; methods: {', '.join(list_methods())}")
    print("methods:")
    for name in methods:
        info = method_info(name)
        calib = f" [calibration: {info.calibration}]" if info.calibration else ""
        print(f"  {name:18s} {info.description}{calib}")
    if filtered:  # a question about methods: the other sections would bury the answer
        return 0
    print("datasets:")
    for name in list_datasets():
        print(f"  {name:18s} {dataset_info(name).description}")
    print("presets:")
    for name, preset in PRESETS.items():
        print(f"  {name:18s} {preset.description}")
    return 0


def cmd_leaderboard(args) -> int:
    out = Path(args.out)
    if args.retime:
        _retime(out)
    boards = write_all(out)
    streams = _rerender_streams(out)
    if not boards and not streams:
        raise BenchError(f"no run records under {out / 'runs'}; run `bench run --out {out}` first")
    for _, markdown in boards:
        print(markdown)
    if streams:
        print("re-drew " + ", ".join(str(p) for p in streams))
    return 0


def _retime(out: Path) -> None:
    records = load_records(out)
    if not records:
        raise BenchError(f"no run records under {out / 'runs'} to time again")
    if resolve_device("auto").type == "cpu":
        threads_for_timing()
    start = time.perf_counter()
    retimed, kept, networks = retime_latency(records)
    for record in retimed:
        write_record(out, record)
    print(f"timed the latency of {len(retimed) - len(kept)} record(s) again ({networks} "
          f"network(s), one at a time, {time.perf_counter() - start:.0f} s)"
          + ("; left as they were: " + "; ".join(kept) if kept else ""), flush=True)


def _rerender_streams(out: Path) -> list[Path]:
    """Draw each ``stream-<dataset>-<classes>.png`` again from its CSV (as `bench stream` wrote
    it), so that pictures follow the code that draws them without replaying anything."""
    drawn = []
    for path in sorted(out.glob("stream-*-*.csv")):
        dataset, _, classes = path.stem.removeprefix("stream-").rpartition("-")
        picture = stream_png(_stream_table(read_table(path, ["method", "threshold", "skip_rate"])),
                             f"{dataset}, {classes} classes")
        if picture is not None:
            drawn.append(atomic_write(path.with_suffix(".png"), picture))
    return drawn


def cmd_plot(args) -> int:
    out = Path(args.out)
    try:
        written = write_curves(out)
    except FileNotFoundError:
        raise BenchError(f"no run records under {out / 'runs'}; run `bench run --out {out}` "
                         "first") from None
    print(f"wrote {len(written)} picture(s) of training histories to {out / 'curves'}/")
    return 0


def cmd_prepare(args) -> int:
    cropper = EyeCropper(detector=args.detector, margin=args.margin, size=args.size)
    common = dict(classes=args.classes, cropper=cropper, on_miss=args.on_miss,
                  preview=args.preview, progress=not args.quiet)
    if args.kind == "emug":
        report = prepare_emug(args.mug_root, args.out, **common)
    else:
        report = prepare_eyes(args.dataset, args.data_root, args.out, **common)
    print(report.summary())
    if args.preview:
        print(f"contact sheet: {args.preview}")
    return 0


COMMANDS = {"run": cmd_run, "stream": cmd_stream, "profile": cmd_profile, "list": cmd_list,
            "leaderboard": cmd_leaderboard, "prepare": cmd_prepare, "plot": cmd_plot}


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C: workers stop, finished runs stay."""


def _terminate(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt():
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _own_code_folders() -> tuple[str, ...]:
    """The folders of this suite's packages (``bench`` and the built-in method packages)."""
    specs = [importlib.util.find_spec(name) for name in (__package__, *BUILTIN_PACKAGES)]
    return tuple(str(Path(folder).resolve()) + os.sep for spec in specs if spec
                 for folder in spec.submodule_search_locations or ())


@contextlib.contextmanager
def _one_line_warnings():
    """Warnings as the CLI's other messages: "bench: warning: <message>", one line each. The
    suite's own say what to do and need no source line; another library's keep its name and
    line, which is what its issue tracker would ask for."""
    own = _own_code_folders()

    def show(message, category, filename, lineno, file=None, line=None):
        where = "" if str(Path(filename).resolve()).startswith(own) \
            else f"{category.__name__} from {filename}:{lineno}: "
        print(f"bench: warning: {where}{message}", file=file or sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_as_interrupt(), _one_line_warnings():
            return _main(args)
    except KeyboardInterrupt as interrupt:  # also during the handler's own clean-up
        print("bench: interrupted; finished runs are saved and skipped when you rerun, and runs "
              "in progress resume from their last saved epoch",
              file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) else 130


def _bounded_threads(args) -> int | None:
    """``--threads`` at most the CPUs this process may use (when it trains here): each thread
    beyond them only waits for a core (a 10 s smoke run took over 300 s with 1000 threads)."""
    cpus = usable_cpus()
    if args.threads is None or args.threads <= cpus or scheduler_address(getattr(args, "scheduler", None)):
        return args.threads
    print(f"bench: warning: --threads {args.threads} is more than the {cpus} CPU(s) this process "
          f"may use; using {cpus}", file=sys.stderr)
    return cpus


def _main(args) -> int:
    try:
        options = {}
        if hasattr(args, "compile"):  # run and stream train: their engine flags apply
            args.threads = _bounded_threads(args)
            configure_threads(args.threads)
            options = dict(channels_last=args.channels_last, amp=args.amp, compile=args.compile)
        with engine_options(**options):
            return COMMANDS[args.command](args)
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 2
    except torch.cuda.OutOfMemoryError:
        print(f"bench: error: {_oom_hint(getattr(args, 'batch_size', None))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
