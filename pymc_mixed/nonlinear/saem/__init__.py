"""SAEM for nonlinear mixed models (Delyon, Lavielle & Moulines 1999; Kuhn & Lavielle 2005),
as MATLAB's nlmefitsa, Monolix and saemix: ``NonlinearMixedModel.fit(method="saem", seed=1)``.

Modules: :mod:`.options` (nlmefitsa's settings), :mod:`.layout` (centred random parameters),
:mod:`.mcmc` (the batched Metropolis-Hastings E-step), :mod:`.approximation` (statistics,
step sizes), :mod:`.mstep`, :mod:`.driver` (the loop), :mod:`.linearized`, :mod:`.stderr`,
:mod:`.loglik`, :mod:`.diagnostics`, :mod:`.result`, :mod:`.fit` (everything after the loop).
"""

from .diagnostics import SAEMConvergenceWarning
from .fit import fit_saem
from .options import SAEMOptions, saem_options
from .result import SAEMResult

__all__ = ["fit_saem", "SAEMConvergenceWarning", "SAEMOptions", "saem_options", "SAEMResult"]
