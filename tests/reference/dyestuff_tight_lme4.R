# Dyestuff ML with lme4's defaults and with BOBYQA run to tight tolerances (issue 7, item 6):
# lme4's default stop leaves theta ~1e-7 short of the optimum, which moves sigma by ~1e-6.
# Rscript tests/reference/dyestuff_tight_lme4.R > tests/reference/dyestuff_tight_lme4.out
suppressMessages(library(lme4))
fmt <- function(x) formatC(x, digits = 15, format = "g")
m0 <- lmer(Yield ~ 1 + (1 | Batch), Dyestuff, REML = FALSE)
ctl <- lmerControl(optimizer = "nloptwrap",
                   optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-12,
                                  xtol_rel = 1e-12, maxeval = 10000))
m1 <- lmer(Yield ~ 1 + (1 | Batch), Dyestuff, REML = FALSE, control = ctl)
for (nm in c("default", "tight")) {
  m <- if (nm == "default") m0 else m1
  cat(nm, "theta", fmt(getME(m, "theta")), "sigma", fmt(sigma(m)),
      "deviance", fmt(deviance(m)), "\n")
}
