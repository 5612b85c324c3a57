# A binomial GLMM whose optimum has a small positive variance (issue 7, item 6): main stopped at
# theta = 0 after 4 evaluations. Data: tests/reference/binom_small_var.csv (numpy seed 3, 15
# groups of 8, eta = -0.3 + 0.5 x + N(0, 0.35^2) per group).
# Rscript tests/reference/binom_small_var_lme4.R > tests/reference/binom_small_var_lme4.out
suppressMessages(library(lme4))
fmt <- function(x) formatC(x, digits = 15, format = "g")
d <- read.csv("tests/reference/binom_small_var.csv"); d$g <- factor(d$g)
ctl <- glmerControl(tolPwrss = 1e-12, optCtrl = list(ftol_abs = 1e-12, xtol_abs = 1e-10))
for (nm in c("default", "tight")) {
  m <- if (nm == "default") glmer(y ~ x + (1 | g), d, family = binomial) else
    glmer(y ~ x + (1 | g), d, family = binomial, control = ctl)
  cat(nm, "theta", fmt(getME(m, "theta")), "beta", fmt(fixef(m)),
      "minus2loglik", fmt(-2 * as.numeric(logLik(m))), "\n")
}
