# Reference numbers for pymc_mixed.postfit (profile, influence, coef, predict, drop1, rePCA),
# from lme4 1.1-31 on R 4.2. Writes tests/reference/lme4_postfit_post.json.
# Run from the repository root: Rscript bench/make_postfit_post_refs.R
suppressMessages({library(lme4); library(jsonlite)})
gz <- function(name) read.csv(gzfile(file.path("pymc_mixed/datasets/data", paste0(name, ".csv.gz"))))
out <- list(lme4 = as.character(packageVersion("lme4")))
ci <- function(x) list(names = rownames(x), lower = unname(x[, 1]), upper = unname(x[, 2]))

ss <- gz("sleepstudy"); ss$Subject <- factor(ss$Subject)
ml <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), ss, REML = FALSE)
reml <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), ss)
out$sleepstudy_ml_profile <- ci(confint(ml, method = "profile", oldNames = FALSE))
out$sleepstudy_reml_profile <- ci(confint(reml, method = "profile", oldNames = FALSE))
out$sleepstudy_ml_wald <- ci(confint(ml, method = "Wald", oldNames = FALSE))
out$sleepstudy_ml_hat <- unname(hatvalues(ml))
out$sleepstudy_ml_cooks <- unname(cooks.distance(ml))
out$sleepstudy_ml_rstudent <- unname(rstudent(ml))
out$sleepstudy_reml_hat <- unname(hatvalues(reml))
inf <- influence(ml, groups = "Subject")
out$sleepstudy_ml_influence_subject <- list(
  groups = rownames(inf[["fixed.effects[-Subject]"]]),
  fixef = unname(inf[["fixed.effects[-Subject]"]]),
  cooks = unname(cooks.distance(inf)), dfbeta = unname(dfbeta(inf)))
cf <- coef(ml)$Subject
out$sleepstudy_ml_coef <- list(levels = rownames(cf), intercept = cf[, 1], days = cf[, 2])
nd <- data.frame(Days = c(0, 5, 9, 3), Subject = factor(c("308", "309", "999", "372")))
out$sleepstudy_ml_predict <- list(
  all = unname(predict(ml, nd, allow.new.levels = TRUE)),
  none = unname(predict(ml, nd, re.form = NA)))
m0 <- lmer(Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject), ss, REML = FALSE)
out$sleepstudy_zcp_predict_int_only <- unname(predict(m0, nd, re.form = ~(1 | Subject), allow.new.levels = TRUE))
d1 <- drop1(ml, test = "Chisq")
out$sleepstudy_ml_drop1 <- list(terms = rownames(d1), npar = d1$npar, AIC = d1$AIC,
                                LRT = d1$LRT, p = d1[["Pr(Chi)"]])
out$sleepstudy_ml_repca_sdev <- unname(summary(rePCA(ml))$Subject$importance[1, ])
out$sleepstudy_ml_vcov <- as.matrix(vcov(ml))
print(str(out))

cbpp <- gz("cbpp"); cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
            control = glmerControl(tolPwrss = 1e-12))
out$cbpp_profile <- ci(confint(gm, method = "profile", oldNames = FALSE))
out$cbpp_wald <- ci(confint(gm, method = "Wald", oldNames = FALSE))
out$cbpp_vcov_hessian <- as.matrix(vcov(gm, use.hessian = TRUE))
out$cbpp_objective <- -2 * as.numeric(logLik(gm))
print(out$cbpp_profile)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor"),
           "tests/reference/lme4_postfit_post.json")
