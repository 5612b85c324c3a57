import json
import pathlib
import warnings

import pytest

REF_DIR = pathlib.Path(__file__).parent / "reference"


@pytest.fixture(scope="session")
def ref():
    """Reference fits from lme4 1.1-31 / nlme 3.1-162 (tests/reference/lme4_nlme_fits.json)."""
    return json.loads((REF_DIR / "lme4_nlme_fits.json").read_text())


@pytest.fixture(scope="session")
def ref_extra():
    """Extra lme4 1.1-31 values computed by bench/make_extra_refs.R."""
    return json.loads((REF_DIR / "lme4_extra.json").read_text())
