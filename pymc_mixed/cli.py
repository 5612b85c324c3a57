"""Command line: ``pymc-mixed fit FORMULA --data NAME_OR_FILE [--ml] [--out FILE]``."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

__all__ = ["main"]


def _read_data(source: str):
    import pandas as pd

    from . import datasets

    path = pathlib.Path(source)
    if path.suffix.lower() in (".csv", ".gz", ".parquet", ".pq") or path.exists():
        if not path.exists():
            raise SystemExit(f"error: data file {source!r} not found")
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    try:
        return datasets.load(source)
    except KeyError as err:
        raise SystemExit(f"error: {err.args[0]}") from None


def _fit(args) -> int:
    from .model import MixedModel

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
    if args.out:
        tree = res.to_datatree()
        out = pathlib.Path(args.out)
        if out.suffix == ".zarr":
            try:
                import zarr  # noqa: F401
            except ImportError:
                raise SystemExit("error: saving to .zarr needs the zarr package "
                                 "(pip install zarr); or save as .nc (NetCDF)") from None
            tree.to_zarr(out)
        else:
            tree.to_netcdf(out)
        print(f"saved DataTree to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pymc-mixed`` command."""
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
    args = parser.parse_args(argv)
    if args.command == "datasets":
        from . import datasets

        print("\n".join(datasets.names()))
        return 0
    return _fit(args)


if __name__ == "__main__":
    sys.exit(main())
