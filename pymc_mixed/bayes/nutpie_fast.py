"""nutpie's compilation with faster-compiling C callbacks.

nutpie wraps the model's numba functions in C callbacks compiled anew for every model. This
module replaces the two private factories that build them (``nutpie.compile_pymc.
_make_c_logp_func`` and ``_make_c_expand_func``) for the duration of one compilation.
``tests/test_nutpie_patch.py`` checks the private names and signatures this relies on, so a
nutpie release that changes them fails that test loudly instead of silently losing the gain;
:func:`compile_nutpie` falls back to nutpie's own compilation when they are missing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compile_nutpie", "PATCHED"]

# nutpie's private factories this module replaces, with the parameters it passes them
PATCHED = {
    "_make_c_logp_func": ("n_dim", "logp_fn", "user_data", "shared_keys", "shared_data"),
    "_make_c_expand_func": ("n_dim", "n_expanded", "expand_fn", "user_data",
                            "shared_var_keys", "shared_data"),
}


def _loop_copy_wrappers(ncp):
    """nutpie's C callbacks with the result copied by a loop instead of ``out[...] = grad``.

    nutpie wraps the model's numba functions in C callbacks that are compiled anew for every
    model (they cannot be cached). Their slice assignments pull in numba's generic
    fancy-indexing setitem, whose compilation takes ~2.5 of the ~4 s nutpie spends on a small
    model; an element loop compiles in milliseconds and does the same thing. Return codes
    match nutpie's (3: non-finite gradient, 4: non-finite log density, 1/-2: error).
    """
    import numba

    def make_logp(n_dim, logp_fn, user_data, shared_keys, shared_data):
        extract = ncp.make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
        c_sig = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double), numba.types.voidptr)

        def logp_numba(dim, x_, out_, logp_, user_data_):
            if dim != n_dim:
                return -1
            try:
                x = numba.carray(x_, (n_dim,))
                logp_val, grad = extract(x, user_data_)
                logp_[0] = logp_val
                finite = True
                for i in range(n_dim):
                    out_[i] = grad[i]
                    finite = finite and np.isfinite(grad[i])
                if not finite:
                    return 3
                if not np.isfinite(logp_val):
                    return 4
            except Exception:  # noqa: BLE001
                return 1
            return 0

        return logp_numba, c_sig

    def make_expand(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data):
        extract = ncp.make_extraction_fn(expand_fn, shared_data, shared_var_keys,
                                         user_data.dtype)
        c_sig = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double), numba.types.voidptr)

        def expand_numba(dim, expanded, x_, out_, user_data_):
            if dim != n_dim or expanded != n_expanded:
                return -1
            try:
                x = numba.carray(x_, (n_dim,))
                (values,) = extract(x, user_data_)
                for i in range(n_expanded):
                    out_[i] = values[i]
            except Exception:  # noqa: BLE001
                return -2
            return 0

        return expand_numba, c_sig

    return make_logp, make_expand


def compile_nutpie(model, var_names=None):
    """``nutpie.compile_pymc_model`` with faster-compiling C callbacks (see
    :func:`_loop_copy_wrappers`); falls back to nutpie's own when its internals differ."""
    import nutpie

    try:
        import nutpie.compile_pymc as ncp

        originals = (ncp._make_c_logp_func, ncp._make_c_expand_func)
        ncp.make_extraction_fn  # noqa: B018  (the helper the replacements need)
    except (ImportError, AttributeError):
        return nutpie.compile_pymc_model(model, var_names=var_names)
    ncp._make_c_logp_func, ncp._make_c_expand_func = _loop_copy_wrappers(ncp)
    try:
        return nutpie.compile_pymc_model(model, var_names=var_names)
    finally:
        ncp._make_c_logp_func, ncp._make_c_expand_func = originals
