"""Argument parsing and dispatch for ``python main.py SUBCOMMAND``.

    python main.py train --preset quick --data probe --out runs/probe
    python main.py evaluate --checkpoint runs/probe/best.npz --data probe
    python main.py report --checkpoint runs/probe/best.npz --data probe --out runs/probe/report
    python main.py overfit --model row-rnn
    python main.py memory --cells rnn,lstm,gru --distances 4,8,12,16,20,24,28 --out runs/memory
    python main.py download

Exit codes: 0 success, 1 a one-line ``error: ...`` (bad input), 2 bad usage, 3 the training
run diverged, 130 interrupted with Ctrl-C. Heavy modules (NumPy engine, matplotlib,
scikit-learn) are imported only by the subcommand that needs them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys

from core.names import (
    ACTIVATIONS,
    CELL_KINDS,
    CLIP_MODES,
    INITS,
    MODEL_KINDS,
    OPTIMIZERS,
    PRESETS,
    SEQUENCES,
)

# training options: (flag, argparse keywords, TrainConfig field)
TRAIN_OPTIONS = [
    ("--epochs", dict(type=int, metavar="N", help="maximum number of epochs"), "epochs"),
    ("--batch-size", dict(type=int, metavar="N", help="images per training step"), "batch_size"),
    ("--optimizer", dict(choices=OPTIMIZERS), "optimizer"),
    ("--lr", dict(type=float, metavar="F", help="learning rate"), "lr"),
    ("--reg", dict(type=float, metavar="F", help="L2 weight decay strength"), "reg"),
    ("--clip", dict(choices=CLIP_MODES,
                    help="gradient clipping: elementwise value, global norm, or none"), "clip"),
    ("--clip-threshold", dict(type=float, metavar="F"), "clip_threshold"),
    ("--hidden", dict(type=int, metavar="N", help="hidden units H"), "hidden"),
    ("--cell", dict(choices=CELL_KINDS, help="recurrent cell: vanilla rnn, lstm or gru"), "cell"),
    ("--activation", dict(choices=ACTIVATIONS, help="the vanilla cell's nonlinearity"),
     "activation"),
    ("--forget-bias", dict(type=float, metavar="F",
                           help="gated cells: the bias at init of the gate that keeps the "
                           "state, the lstm's forget gate and the gru's update gate (default 1.0)"),
     "forget_bias"),
    ("--sequence", dict(choices=SEQUENCES,
                        help="cnn-rnn only: read the 8x8 feature map as 8 rows (default) or "
                        "64 positions in raster order"), "sequence"),
    ("--init", dict(metavar="NAME", help=f"recurrent init: {', '.join(INITS)}"), "init"),
    ("--bptt-window", dict(type=int, metavar="K",
                           help="truncated BPTT: only the last K timesteps get gradient"),
     "bptt_window"),
    ("--max-minutes", dict(type=float, metavar="F", help="time budget in minutes"),
     "max_minutes"),
    ("--seed", dict(type=int, metavar="N"), "seed"),
    ("--workers", dict(type=int, metavar="N",
                       help="processes that share each batch, one core each (default: the "
                       "machine's cores, up to 4; 1 leaves a core free)"), "workers"),
]


def _add_model_options(p: argparse.ArgumentParser, data_required: bool) -> None:
    p.add_argument("--model", choices=MODEL_KINDS, help="row-rnn (rows as timesteps) or cnn-rnn "
                   "(conv features, 8 timesteps); required unless --preset gives it")
    p.add_argument("--data", required=data_required, metavar="{PATH,cifar10,probe}",
                   default=None if data_required else "probe",
                   help="CIFAR-10 tarball or folder; `cifar10` = $RNNSCOPE_DATA or the "
                   "downloaded copy in the cache folder; `probe` = the built-in memory task"
                   + ("" if data_required else " (default)"))
    p.add_argument("--preset", choices=PRESETS, help="start from a named configuration; other "
                   "options override it")
    p.add_argument("--subset", metavar="N|FRACTION",
                   help="train on N images or this fraction of the training set")
    p.add_argument("--cue-row", type=int, metavar="N",
                   help="probe task only: first image row of the 4-row class cue, 1 (top) to "
                   "29 (default 25, near the bottom)")
    for flag, kw, _ in TRAIN_OPTIONS:
        p.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnscope",
        description="rnnscope: a visual explainer for recurrent networks. Without a "
        "subcommand, opens the desktop app.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model headless, writing checkpoints and metrics",
                       description="Train a model; writes OUT/history.json, OUT/best.npz, "
                       "OUT/last.npz and OUT/metrics.json. Ctrl-C stops cleanly (last.npz kept).")
    _add_model_options(p, data_required=True)
    p.add_argument("--resume", metavar="CKPT",
                   help="continue the run saved in CKPT (its own settings are used)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")

    p = sub.add_parser("evaluate", help="accuracy, loss and calibration error on the test split")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--data", required=True, metavar="{PATH,cifar10,probe}",
                   help="as for train")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("report", help="write PNG figures for a checkpoint",
                       description="Writes curves, confusion matrix, reliability diagram, t-SNE "
                       "of final hidden states, misclassification gallery, prediction grid and "
                       "the gradient-through-time heatmap as PNGs into OUT.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--data", required=True, metavar="{PATH,cifar10,probe}",
                   help="as for train")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--tsne-points", type=int, default=1000, metavar="N",
                   help="test images in the t-SNE plot (default 1000)")

    p = sub.add_parser("overfit", help="sanity check: can the model memorise a tiny subset?",
                       description="Trains on a tiny training subset until training accuracy "
                       "reaches 99%% and says whether it got there (exit 0 yes, 1 no).")
    _add_model_options(p, data_required=False)
    p.add_argument("--size", type=int, default=100, metavar="N",
                   help="number of training images to memorise (default 100)")
    p.add_argument("--target", type=float, default=0.99, metavar="F",
                   help="training accuracy to reach (default 0.99)")

    _add_memory_parser(sub)

    p = sub.add_parser("download", help="download CIFAR-10 into the cache folder")
    p.add_argument("--dest", metavar="DIR", help="folder to put cifar-10-python.tar.gz in "
                   "(default: the rnnscope cache folder)")
    return parser


def _add_memory_parser(sub) -> None:
    """`memory`: the memory bench (core.memory_bench). Its defaults are the bench's own."""
    from core.memory_bench import (
        BENCH_DISTANCES,
        BENCH_EPOCHS,
        BENCH_HIDDEN,
        BENCH_LR,
        BENCH_RELU_LR,
        BENCH_SEEDS,
        BENCH_SIZES,
    )

    lrs = ", ".join(f"{k} {v:g}" for k, v in BENCH_LR.items())
    p = sub.add_parser(
        "memory", help="the memory bench: test accuracy against cue distance per cell",
        description="Trains one row-RNN per (cell, distance, seed) on the memory-probe task, "
        "the class cue ending d rows before the last row read (d = 4: cue rows 25-28; d = 28: "
        "rows 1-4), and writes OUT/memory.json, OUT/memory.png (accuracy against distance), "
        "OUT/gradients.png (gradient through time at the longest distance) and "
        "OUT/connectivity.png (how much of each decision's input gradient falls on the cue "
        "rows). Ctrl-C stops: the finished runs are kept.")
    p.add_argument("--cells", metavar="LIST",
                   help="comma-separated cell variants CELL[:ACTIVATION][:INIT], e.g. "
                   "rnn,rnn:tanh:orthogonal,rnn:relu:identity,lstm,gru (ACTIVATION for the "
                   "vanilla cell only; default: every registered cell)")
    p.add_argument("--distances", metavar="LIST",
                   default=",".join(map(str, BENCH_DISTANCES)),
                   help="comma-separated cue distances d (default %(default)s)")
    p.add_argument("--seeds", type=int, default=BENCH_SEEDS, metavar="N",
                   help="runs per cell and distance, seeds 0..N-1 (default %(default)s)")
    p.add_argument("--hidden", type=int, default=BENCH_HIDDEN, metavar="N",
                   help="hidden units (default %(default)s; with --match params, of the first "
                   "cell)")
    p.add_argument("--match", choices=("hidden", "params"), default="hidden",
                   help="hidden: every cell has --hidden units; params: every cell gets the "
                   "hidden size giving about as many parameters as the first cell "
                   "(default %(default)s)")
    p.add_argument("--epochs", type=int, default=BENCH_EPOCHS, metavar="N",
                   help="training epochs per run (default %(default)s)")
    p.add_argument("--train-images", type=int, default=BENCH_SIZES["n_train"], metavar="N",
                   help="probe training images per run (default %(default)s; "
                   f"{BENCH_SIZES['n_val']} validation, {BENCH_SIZES['n_test']} test)")
    p.add_argument("--cue-height", type=int, default=4, metavar="N",
                   help="rows of the class cue (default %(default)s)")
    p.add_argument("--noise", type=float, default=0.5, metavar="F",
                   help="probe pixel noise in [0, 1] (default %(default)s)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh",
                   help="the vanilla cell's activation where its variant names none "
                   "(default %(default)s)")
    p.add_argument("--init", metavar="NAME", default="xavier",
                   help=f"the vanilla cell's recurrent init where its variant names none: "
                   f"{', '.join(INITS)} (default %(default)s)")
    p.add_argument("--lr", action="append", metavar="CELL=RATE",
                   help=f"Adam learning rate of a cell or of one variant, repeatable (defaults: "
                   f"{lrs}; the vanilla cell with relu {BENCH_RELU_LR:g})")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes running runs side by side, one core each (default: the "
                   "machine's cores)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")


def _train_overrides(args) -> dict:
    out = {field: getattr(args, flag.lstrip("-").replace("-", "_"))
           for flag, _, field in TRAIN_OPTIONS}
    out["model"] = args.model
    return out


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help (0) or bad usage (2): argparse has printed why
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in ("train", "overfit") and not (args.model or args.preset
                                                     or getattr(args, "resume", None)):
        return _usage_error(parser, f"{args.command}: give --model {{{','.join(MODEL_KINDS)}}} or "
                            "--preset NAME")

    import warnings

    from cli import commands
    from core.errors import RnnscopeError

    # a warning is one line, like an error (no source line from inside a library)
    warnings.formatwarning = lambda message, category, *args, **kw: f"warning: {message}\n"

    try:
        if args.command == "train":
            return commands.train_command(args.data, args.out, preset=args.preset,
                                          overrides=_train_overrides(args), subset=args.subset,
                                          cue_row=args.cue_row, resume=args.resume)
        if args.command == "evaluate":
            return commands.evaluate_command(args.checkpoint, args.data, as_json=args.json)
        if args.command == "report":
            return commands.report_command(args.checkpoint, args.data, args.out,
                                           tsne_points=args.tsne_points)
        if args.command == "overfit":
            return commands.overfit_command(args.data, preset=args.preset,
                                            overrides=_train_overrides(args),
                                            subset=args.subset, cue_row=args.cue_row,
                                            size=args.size, target=args.target)
        if args.command == "memory":
            return commands.memory_command(
                args.out, cells=args.cells, distances=args.distances, seeds=args.seeds,
                hidden=args.hidden, match=args.match, epochs=args.epochs,
                train_images=args.train_images, cue_height=args.cue_height, noise=args.noise,
                activation=args.activation, init=args.init, lr=args.lr, workers=args.workers)
        if args.command == "download":
            return commands.download_command(args.dest)
    except RnnscopeError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return commands.EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return commands.EXIT_INTERRUPTED
    return _usage_error(parser, f"unknown command {args.command}")


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2

