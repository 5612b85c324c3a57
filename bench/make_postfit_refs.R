# Post-fit reference values from lme4 (profile and Wald intervals, influence
# measures, predictions, drop1, rePCA, GLMM z tests and vcov variants) for the
# pymc_mixed post-fit tools.
#
# Usage:
#   Rscript bench/make_postfit_refs.R [DATA_DIR] [OUT_JSON]
#
#   DATA_DIR  directory with the data-set CSVs (.csv or .csv.gz) and types.json
#             (default: pymc_mixed/datasets/data next to this bench/ dir)
#   OUT_JSON  default: tests/reference/lme4_postfit.json
#
# Field meanings: tests/reference/README.md ("lme4_postfit.json").

args <- commandArgs(trailingOnly = TRUE)
.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
data_dir <- if (length(args) >= 1) args[1] else
  file.path(dirname(.this_dir), "pymc_mixed", "datasets", "data")
out_path <- if (length(args) >= 2) args[2] else
  file.path(dirname(.this_dir), "tests", "reference", "lme4_postfit.json")

source(file.path(.this_dir, "read_typed.R"))
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
rd <- function(ds) {
  p <- file.path(data_dir, paste0(ds, ".csv"))
  if (!file.exists(p)) p <- paste0(p, ".gz")
  read_typed(p, file.path(data_dir, "types.json"), ds)
}

named <- function(x) as.list(x)
arr <- function(x) I(unname(as.numeric(x)))
mat_json <- function(m) list(names = I(rownames(m)),
                             matrix = lapply(seq_len(nrow(m)),
                                             function(i) arr(m[i, ])))
# interval matrix -> {row name: [lower, upper]}
ci_json <- function(ci) {
  out <- lapply(seq_len(nrow(ci)), function(i) arr(ci[i, ]))
  names(out) <- rownames(ci)
  out
}
# data frame -> {column: array or names}
df_json <- function(d) {
  r <- lapply(d, function(x) if (is.numeric(x)) arr(x) else I(as.character(x)))
  r$rownames <- I(rownames(d))
  r
}
median_time <- function(expr_fun, n) {
  secs <- numeric(n); val <- NULL
  for (i in seq_len(n)) {
    secs[i] <- system.time(v <- expr_fun())[["elapsed"]]
    if (i == 1) val <- v
  }
  list(value = val, seconds = median(secs), all = arr(secs))
}

refs <- list()
refs[["_source"]] <- sprintf(
  "computed with lme4 %s, R %s on %s by bench/make_postfit_refs.R",
  as.character(packageVersion("lme4")),
  paste(R.version$major, R.version$minor, sep = "."), format(Sys.Date()))
refs[["_versions"]] <- list(lme4 = as.character(packageVersion("lme4")),
                            Matrix = as.character(packageVersion("Matrix")),
                            R = R.version.string)

## ------------------------------------------------------------- sleepstudy
sleep <- rd("sleepstudy")
fit <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), sleep, REML = FALSE)
s <- list(formula = "Reaction ~ 1 + Days + (1 + Days | Subject)", REML = FALSE,
          logLik = as.numeric(logLik(fit)), fixef = named(fixef(fit)))

pt <- median_time(function() confint(fit, method = "profile",
                                     oldNames = FALSE), 3)
s$confint_profile <- ci_json(pt$value)
s$confint_profile_call <- "confint(fit, method = 'profile', oldNames = FALSE) (level 0.95)"
s$profile_seconds <- pt$seconds
s$profile_seconds_all <- pt$all
s$profile_seconds_note <- paste("median elapsed seconds of 3 runs of that",
  "confint call (profile() + interpolation), lme4 on this 2-core machine")
w <- confint(fit, method = "Wald", oldNames = FALSE)
s$confint_wald <- ci_json(w[names(fixef(fit)), , drop = FALSE])
s$confint_wald_note <- "fixef +- qnorm(0.975) * SE; lme4 gives NA for the variance rows"

s$hatvalues <- arr(hatvalues(fit))
s$hatvalues_source <- "lme4:::hatvalues.merMod (diag of the hat matrix of the fitted values, incl. random effects)"
s$cooks_distance <- arr(cooks.distance(fit))
s$cooks_distance_source <- paste(
  "lme4:::cooks.distance.merMod: one-step, (pearson_res/(1-h))^2 * h /",
  "(sigma^2 * rank(X)), per observation")
infl <- influence(fit, groups = "Subject")
db <- dfbeta(infl)     # rows named by subject (cooks.distance(infl) is unnamed)
s$cooks_distance_subject <- named(setNames(cooks.distance(infl), rownames(db)))
s$cooks_distance_subject_source <- paste(
  "cooks.distance(influence(fit, groups = 'Subject')) =",
  "lme4:::cooks.distance.influence.merMod on leave-one-subject-out refits:",
  "dfbeta_i' [(n-p)/(n p) vcov^-1] dfbeta_i with n = 18 subjects, p = 2;",
  "vcov = that of the full fit")
s$dfbeta_subject <- list(columns = I(colnames(db)), rows = mat_json(db))

cf <- coef(fit)$Subject
s$coef <- list(columns = I(colnames(cf)),
               values = setNames(lapply(seq_len(nrow(cf)),
                                        function(i) arr(cf[i, ])), rownames(cf)))
s$predict_population <- arr(predict(fit, re.form = ~0))
s$predict_full <- arr(predict(fit))

d1 <- drop1(fit, test = "Chisq")
s$drop1 <- df_json(as.data.frame(d1))
s$drop1_call <- "drop1(fit, test = 'Chisq') (ML refit without each fixed term, LRT)"

pc <- rePCA(fit)$Subject
s$rePCA <- list(sdev = arr(pc$sdev),
                proportion = arr(pc$sdev^2 / sum(pc$sdev^2)),
                rotation = lapply(seq_len(nrow(pc$rotation)),
                                  function(i) arr(pc$rotation[i, ])),
                note = paste("rePCA(fit)$Subject: sdev are relative to sigma",
                             "(SVD of the relative covariance factor Lambda);",
                             "rotation rows = (Intercept), Days; columns = components"))
refs[["sleepstudy_ml"]] <- s

fit2 <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep,
             REML = FALSE)
refs[["sleepstudy_twoterm_ml"]] <- list(
  formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
  REML = FALSE, logLik = as.numeric(logLik(fit2)), fixef = named(fixef(fit2)),
  theta = arr(getME(fit2, "theta")),
  predict_intercept_only = arr(predict(fit2, re.form = ~(1 | Subject))),
  predict_slope_only = arr(predict(fit2, re.form = ~(0 + Days | Subject))),
  predict_population = arr(predict(fit2, re.form = NA)),
  predict_full = arr(predict(fit2)))

## ------------------------------------------------------------------- cbpp
cbpp <- rd("cbpp")
gfit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
              binomial)
g <- list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
          family = "binomial(logit)", nAGQ = 1,
          logLik = as.numeric(logLik(gfit)), fixef = named(fixef(gfit)))
pt <- median_time(function() confint(gfit, method = "profile",
                                     oldNames = FALSE), 3)
g$confint_profile <- ci_json(pt$value)
g$profile_seconds <- pt$seconds
w <- confint(gfit, method = "Wald", oldNames = FALSE)
g$confint_wald <- ci_json(w[names(fixef(gfit)), , drop = FALSE])
ct <- coef(summary(gfit))
g$summary_coef <- list(columns = I(colnames(ct)),
                       values = setNames(lapply(seq_len(nrow(ct)),
                                                function(i) arr(ct[i, ])),
                                         rownames(ct)))
g$summary_note <- "summary uses vcov(use.hessian = TRUE) (lme4 default)"
g$vcov_hessian <- mat_json(as.matrix(vcov(gfit, use.hessian = TRUE)))
g$vcov_rx <- mat_json(as.matrix(suppressWarnings(vcov(gfit, use.hessian = FALSE))))
refs[["cbpp_laplace"]] <- g

dir.create(dirname(out_path), recursive = TRUE, showWarnings = FALSE)
writeLines(jsonlite::toJSON(refs, auto_unbox = TRUE, digits = NA,
                            pretty = TRUE, null = "null", na = "null"), out_path)
cat("wrote", out_path, "\n")
cat(sprintf("sleepstudy profile confint %.3f s; cbpp %.3f s\n",
            s$profile_seconds, g$profile_seconds))
