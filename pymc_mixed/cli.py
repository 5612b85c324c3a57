"""Command line: ``pymc-mixed fit FORMULA --data NAME_OR_FILE [--ml] [--out FILE]``.

Bad input (a missing or non-regular data file, an empty CSV, a bad header, a refused formula, an
``--out`` folder that does not exist) gets one line on stderr and exit code 2, never a
traceback; everything is checked before the fit starts.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

__all__ = ["main"]


class CLIError(Exception):
    """A user error: print its message and exit with code 2."""


def _check_header(path: pathlib.Path) -> None:
    """Refuse a CSV header with empty or repeated names (pandas would rename them silently)."""
    import pandas as pd

    try:
        head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CLIError(f"data file {str(path)!r} is empty") from None
    names = [str(v).strip() for v in head.iloc[0]] if len(head) else []
    empty = [i + 1 for i, v in enumerate(names) if not v]
    if empty:
        raise CLIError(f"bad header in {str(path)!r}: column {empty[0]} has no name")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise CLIError(f"bad header in {str(path)!r}: column name {dup[0]!r} appears twice")


def _read_file(path: pathlib.Path):
    import pandas as pd

    if not path.exists():
        raise CLIError(f"data file {str(path)!r} not found")
    if not path.is_file():  # /dev/zero, a FIFO, a folder: would read forever or fail deep down
        raise CLIError(f"data file {str(path)!r} is not a regular file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - one line, not a traceback
            raise CLIError(f"cannot read {str(path)!r} as Parquet: {type(err).__name__}") from None
    _check_header(path)
    try:
        data = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        line = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise CLIError(f"cannot read {str(path)!r} as CSV: {type(err).__name__} {line}") from None
    if len(data) == 0:
        raise CLIError(f"data file {str(path)!r} has a header but no rows")
    return data


def _read_data(source: str):
    from . import datasets

    path = pathlib.Path(source)
    if path.suffix.lower() in (".csv", ".gz", ".parquet", ".pq") or path.exists():
        return _read_file(path)
    try:
        return datasets.load(source)
    except KeyError as err:
        raise CLIError(err.args[0]) from None


def _check_out(out: str | None) -> pathlib.Path | None:
    """Check where the DataTree will go before spending time on the fit."""
    if not out:
        return None
    path = pathlib.Path(out)
    if not path.parent.is_dir():
        raise CLIError(f"the folder {str(path.parent)!r} for --out does not exist")
    if path.suffix == ".zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise CLIError("saving to .zarr needs the zarr package (pip install zarr); "
                           "or save as .nc (NetCDF)") from None
    return path


def _fit(args) -> int:
    from .model import MixedModel

    out = _check_out(args.out)
    data = _read_data(args.data)
    t0 = time.perf_counter()
    kwargs = {}
    if args.family != "gaussian":
        kwargs = {"nAGQ": args.nagq} if args.nagq is not None else {}
    model = MixedModel(args.formula, data, family=args.family, weights=args.weights)
    res = model.fit(REML=not args.ml, **kwargs) if model.is_linear else model.fit(**kwargs)
    elapsed = time.perf_counter() - t0
    print(res)
    print(f"\n(fit in {elapsed:.3f} s, {res.optsum.feval} objective evaluations)")
    if out is not None:
        tree = res.to_datatree()
        tree.to_zarr(out) if out.suffix == ".zarr" else tree.to_netcdf(out)
        print(f"saved DataTree to {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pymc-mixed",
                                     description="Fit mixed-effects models from the shell.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a model and print its summary")
    fit.add_argument("formula", help='lme4-style formula, e.g. "y ~ x + (1 + x | g)"')
    fit.add_argument("--data", required=True,
                     help="a bundled data set name (see `pymc-mixed datasets`) or a CSV/Parquet file")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML (LMMs)")
    fit.add_argument("--family", default="gaussian", help="response family (default gaussian)")
    fit.add_argument("--weights", default=None, help="column of prior weights")
    fit.add_argument("--nagq", type=int, default=None, help="quadrature points (GLMMs)")
    fit.add_argument("--out", default=None, help="save the DataTree (.nc NetCDF or .zarr)")
    sub.add_parser("datasets", help="list the bundled data sets")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pymc-mixed`` command; returns 2 (one line on stderr) on bad input."""
    from .formula import FormulaError

    args = _parser().parse_args(argv)
    if args.command == "datasets":
        from . import datasets

        print("\n".join(datasets.names()))
        return 0
    try:
        return _fit(args)
    except (CLIError, FormulaError, ValueError, TypeError) as err:
        text = str(err).strip().splitlines()
        print(f"pymc-mixed: error: {text[0] if text else type(err).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
