"""Several ``quality_vs_steps.py`` runs on one figure, and their figures at chosen steps as a Markdown table.

Each run is ``LABEL=PATH``: PATH is a run's ``curve.json`` or the ``--out`` folder that holds it.
A run scored with ``--ema-decay`` adds a second line, ``LABEL average``. The runs must have been
scored on the same held-out clips (equal baselines), whose scores are drawn as dashed lines. The
table (stdout) has a row per step and a column per line and metric.

Runs of different clip shapes (``--set clip.num_frames=4``, ``clip.height``) are scored on their own
held-out clips, the same seeds rendered at their shape, so their figures differ in task as well as
in model. ``--different-clips`` compares them anyway: each run's baselines are drawn in its colour,
and a second table gives them, so each run reads against the baselines on its own clips.

    python benchmarks/compare_curves.py chosen=benchmarks/results/design/k2000-chosen \\
        obvious=benchmarks/results/design/k2000-obvious --out runs/k2000-compare.png \\
        --steps 500 1000 2000 --metric alpha_iou --metric bg_psnr
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from curve_plot import CURVE_METRICS, baseline_table, markdown_table, plot_curves, series_of


def read_run(spec: str) -> tuple[str, dict]:
    """``"LABEL=PATH"`` -> (label, the run's curve.json as a dict)."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise ValueError(f"{spec!r}: expected LABEL=PATH, e.g. chosen=runs/k2000-chosen")
    file = Path(path) / "curve.json" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise ValueError(f"{spec!r}: no curve.json at {file}")
    run = json.loads(file.read_text())
    if not isinstance(run, dict) or "curve" not in run or "baselines" not in run:
        raise ValueError(f"{file}: not a quality_vs_steps curve.json (no 'curve' and 'baselines')")
    return label, run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=PATH", help="a run's curve.json or its --out folder")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--steps", type=int, nargs="+", help="table rows (default: every step of any run)")
    parser.add_argument("--metric", dest="metrics", action="append", choices=CURVE_METRICS,
                        help="table columns, repeatable (default: alpha_iou and bg_psnr)")
    parser.add_argument("--title", default=None, help="figure title (default: the labels)")
    parser.add_argument("--different-clips", action="store_true",
                        help="compare runs scored on different held-out clips (another clip shape): each run's "
                             "baselines drawn in its colour and tabled")
    args = parser.parse_args(argv)
    try:
        runs = [read_run(spec) for spec in args.runs]
    except ValueError as error:
        parser.error(str(error))
    (first_label, first), *others = runs
    for label, run in others:
        if run["baselines"] != first["baselines"] and not args.different_clips:
            parser.error(f"{label} and {first_label} were scored on different held-out clips (their baselines "
                         "differ): compare runs of the same --eval-clips and --seed, or pass --different-clips")

    series = [line for label, run in runs for line in series_of(label, run["curve"])]
    title = args.title or " against ".join(label for label, _ in runs)
    metrics = args.metrics or ["alpha_iou", "bg_psnr"]
    steps = args.steps or sorted({int(point["step"]) for _, run in runs for point in run["curve"]})
    if args.different_clips:
        own = {label: run["baselines"] for label, run in runs}
        plot_curves(args.out, series, {}, title, own_baselines=own)
        print(markdown_table(series, metrics, steps) + "\n\n" + baseline_table(own, metrics))
    else:
        plot_curves(args.out, series, first["baselines"], title)
        print(markdown_table(series, metrics, steps))


if __name__ == "__main__":
    main()
