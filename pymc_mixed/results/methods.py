"""The analysis after a fit as methods of a result (lme4's ``confint``, ``profile``, ``coef``,
``rePCA``, ``hatvalues``, ``cooks.distance``, ``rstudent``, ``influence``, ``refit``,
``simulate``): each a thin call into :mod:`pymc_mixed.postfit`, which does the work."""

from __future__ import annotations

__all__ = ["PostFitMethods"]


class PostFitMethods:
    """Mixin of :class:`~pymc_mixed.results.MixedModelResult`."""

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Confidence intervals: ``method="profile"`` (default), ``"wald"`` or ``"boot"``
        (see :func:`pymc_mixed.postfit.confint`)."""
        from ..postfit.intervals import confint

        return confint(self, parm=parm, level=level, method=method, **kwargs)

    def profile(self, which=None, **kwargs):
        """Profile likelihood of every parameter (:func:`pymc_mixed.postfit.profile`)."""
        from ..postfit.profile import profile

        return profile(self, which=which, **kwargs)

    def coef(self) -> dict:
        """Per-level coefficients, fixed plus random effects (lme4's ``coef``)."""
        from ..postfit.params import coef

        return coef(self)

    def rePCA(self) -> dict:
        """Principal components of the random-effects covariance factors (lme4's ``rePCA``)."""
        from ..postfit.params import repca

        return repca(self)

    def hatvalues(self):
        """Leverages, the diagonal of the hat matrix (LMMs; lme4's ``hatvalues``)."""
        from ..postfit.influence import hatvalues

        return hatvalues(self)

    def cooks_distance(self):
        """Cook's distance per observation (LMMs; lme4's ``cooks.distance``)."""
        from ..postfit.influence import cooks_distance

        return cooks_distance(self)

    def rstudent(self):
        """Studentized residuals (LMMs; lme4's ``rstudent``)."""
        from ..postfit.influence import rstudent

        return rstudent(self)

    def influence(self, groups=None, refit: bool = False):
        """Case- or group-deletion influence on the fixed effects
        (:func:`pymc_mixed.postfit.influence`)."""
        from ..postfit.influence import influence

        return influence(self, groups=groups, refit=refit)

    def refit(self, y, **kwargs):
        """The same model refitted to a new response (:func:`pymc_mixed.postfit.refit`)."""
        from ..postfit.update import refit

        return refit(self, y, **kwargs)

    def simulate(self, nsim: int = 1, seed=None, **kwargs):
        """``nsim`` responses simulated from the fit (:func:`pymc_mixed.simulate`)."""
        from ..postfit.bootstrap import simulate

        return simulate(self, nsim=nsim, seed=seed, **kwargs)
