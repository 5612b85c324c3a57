"""Inference after a maximum-likelihood fit, from the result alone: the normal approximation
(``approx``), simulation and the parametric bootstrap (``bootstrap``), likelihood-ratio tests
(``anova``) and the ML-vs-posterior table (``compare``). What needs the estimator (a deviance,
its curvature, a refit) comes with the result as values; nothing here imports an estimator."""
