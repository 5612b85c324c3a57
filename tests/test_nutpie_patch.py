"""pymc_mixed.bayes.nutpie_fast replaces two private nutpie factories during compilation; this
fails loudly when a nutpie release renames them or changes their parameters."""

import inspect


def test_nutpie_private_factories_unchanged():
    import nutpie.compile_pymc as ncp

    from pymc_mixed.bayes.nutpie_fast import PATCHED

    for name, params in PATCHED.items():
        fn = getattr(ncp, name)  # AttributeError: nutpie renamed it
        assert tuple(inspect.signature(fn).parameters) == params, name
    assert callable(ncp.make_extraction_fn)
