"""`python -m lem.report SWEEP_DIR`: summarise a sweep's results with bootstrap CIs, comparisons and plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lem.errors import LemError
from lem.report.groups import DEFAULT_RANK_BY
from lem.report.render import console_lines, write_report
from lem.report.stats import DEFAULT_RESAMPLES, DEFAULT_SEED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lem.report",
        description="Summarise a lem sweep or search: per-group mean and median of J/output-token, tokens/J, "
        "throughput, latency, net energy and the CO2e and cost figures with bootstrap 95% CIs, the Pareto front, "
        "the cheapest configuration that meets a requirement, pairwise comparisons, and PNG plots.",
    )
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="a multirun/DATE/TIME folder (or any run)")
    parser.add_argument(
        "--group-by",
        metavar="KEYS",
        help="comma-separated keys to group by (default: every swept parameter); e.g. backend,backend.batch_size",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="compare J/output-token of two selections, each key=value[,key=value]; repeatable",
    )
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="METRIC>=X",
        help="name the cheapest configuration whose median METRIC meets it (>= or <=; any result metric, e.g. "
        '"output_tokens_per_s>=500" or "latency_p95_s<=0.5"), per energy kind; repeatable',
    )
    parser.add_argument(
        "--rank-by",
        default=DEFAULT_RANK_BY,
        metavar="METRIC",
        help="what the ranking and --require's cheapest are by (default %(default)s; e.g. "
        "g_co2e_per_1m_output_tokens, energy_cost_per_1m_output_tokens, instance_cost_per_1m_output_tokens)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: SWEEP_DIR/report)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed (default %(default)s)")
    parser.add_argument(
        "--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples (default %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the report; 0 when it was written, 2 for bad input (one line on stderr)."""
    args = _parser().parse_args(argv)
    group_by = None if args.group_by is None else [k.strip() for k in args.group_by.split(",") if k.strip()]
    try:
        if args.resamples < 1:
            raise LemError(f"--resamples: {args.resamples} must be at least 1; the default is {DEFAULT_RESAMPLES}")
        report = write_report(
            args.sweep_dir,
            args.out,
            group_by=group_by,
            comparisons=[tuple(pair) for pair in args.compare],
            requirements=args.require,
            rank_by=args.rank_by,
            resamples=args.resamples,
            seed=args.seed,
        )
    except LemError as ex:
        print(f"lem.report: error: {ex}", file=sys.stderr)
        return ex.exit_code
    print("\n".join(console_lines(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
