"""docs/postfit.md is executed as a doctest: every example in the user guide runs and prints
what the guide shows."""

import doctest
import pathlib

import matplotlib

matplotlib.use("Agg")

GUIDE = pathlib.Path(__file__).parents[1] / "docs" / "postfit.md"


def test_postfit_guide_examples_run():
    result = doctest.testfile(str(GUIDE), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20
    assert result.failed == 0
