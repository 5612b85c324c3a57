# Reference numbers for offsets in formulas (issue 7, item 3): lme4 fixes offset()'s
# coefficient at 1 and re-evaluates it in predict(newdata). Run: Rscript tests/reference/offsets_lme4.R
suppressMessages(library(lme4))
options(digits = 15)
data(sleepstudy); data(cbpp)
show <- function(tag, fit, nd) {
  cat(tag, "objective", deviance(fit, REML = isREML(fit)), "\n")
  if (isREML(fit)) cat(tag, "REMLcrit", REMLcrit(fit), "\n")
  cat(tag, "beta", fixef(fit), "\n")
  cat(tag, "theta", getME(fit, "theta"), "\n")
  cat(tag, "predict", predict(fit, newdata = nd), "\n")
  cat(tag, "predict_pop", predict(fit, newdata = nd, re.form = NA), "\n")
}
lmm <- lmer(Reaction ~ Days + offset(log(Days + 1)) + (1 | Subject), sleepstudy, REML = FALSE)
show("lmm_ml", lmm, sleepstudy[c(1, 12, 25, 180), ])
cat("lmm_ml -2logLik", -2 * as.numeric(logLik(lmm)), "\n")
# tolPwrss = 1e-12: glmer's default 1e-7 stops PIRLS early (see bench/lme4_glmm_tight.R)
ctrl <- glmerControl(tolPwrss = 1e-12, optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12))
gl <- glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson,
            control = ctrl)
show("cbpp_pois", gl, cbpp[c(1, 5, 20, 56), ])
cat("cbpp_pois deviance", deviance(gl), " -2logLik", -2 * as.numeric(logLik(gl)), "\n")
# the offset argument adds to the formula's offset
gl2 <- glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson,
             offset = rep(0.25, nrow(cbpp)), control = ctrl)
cat("cbpp_both beta", fixef(gl2), "\n")
cat("cbpp_both -2logLik", -2 * as.numeric(logLik(gl2)), "\n")
