# lme4 peer engine for side-by-side benchmarks.
#
# Usage:
#   Rscript bench/lme4_fit.R CASE CSV_PATH TYPES_JSON
#
#   CASE        one of sleepstudy_ml, insteval_ml, verbagg_laplace,
#               verbagg_agq0, cbpp_laplace
#   CSV_PATH    the data set as CSV (e.g. <data>/sleepstudy.csv)
#   TYPES_JSON  types.json describing column types / factor level order
#               (optional: defaults to types.json in the CSV's directory)
#
# Fits the model with lme4 (default optimizers, calc.derivs = FALSE), timing
# ONLY the fit with system.time()["elapsed"]: once cold (first fit in this
# process) and once warm (identical second fit).  Prints one JSON line.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) {
  cat("usage: Rscript lme4_fit.R CASE CSV_PATH [TYPES_JSON]\n", file = stderr())
  quit(status = 2)
}
case <- args[1]; csv_path <- args[2]
types_path <- if (length(args) >= 3) args[3] else
  file.path(dirname(csv_path), "types.json")

.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
source(file.path(.this_dir, "read_typed.R"))
suppressPackageStartupMessages(library(lme4))

dataset <- switch(case,
  sleepstudy_ml = "sleepstudy", insteval_ml = "InstEval",
  verbagg_laplace = "VerbAgg", verbagg_agq0 = "VerbAgg",
  cbpp_laplace = "cbpp",
  { cat("unknown CASE: ", case, "\n", file = stderr()); quit(status = 2) })
dat <- read_typed(csv_path, types_path, dataset)
if (dataset == "VerbAgg") dat$r2Y <- as.numeric(dat$r2 == "Y")

lctrl <- lmerControl(calc.derivs = FALSE)
gctrl <- glmerControl(calc.derivs = FALSE)

fit_once <- switch(case,
  sleepstudy_ml = function()
    lmer(Reaction ~ 1 + Days + (1 + Days | Subject), data = dat,
         REML = FALSE, control = lctrl),
  insteval_ml = function()
    lmer(y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept), data = dat,
         REML = FALSE, control = lctrl),
  verbagg_laplace = function()
    glmer(r2Y ~ 1 + Anger + Gender + btype + situ + (1 | id) + (1 | item),
          data = dat, family = binomial, control = gctrl),
  verbagg_agq0 = function()
    glmer(r2Y ~ 1 + Anger + Gender + btype + situ + (1 | id) + (1 | item),
          data = dat, family = binomial, nAGQ = 0, control = gctrl),
  cbpp_laplace = function()
    glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
          data = dat, family = binomial, control = gctrl))

fit <- NULL
t_cold <- system.time(fit <- fit_once())[["elapsed"]]
t_warm <- system.time(fit2 <- fit_once())[["elapsed"]]

out <- list(case = case, seconds = round(t_cold, 4), seconds_warm = round(t_warm, 4))
m2ll <- -2 * as.numeric(logLik(fit))
if (isLMM(fit)) {
  # for ML fits the optimised objective is the deviance = -2 logLik
  out$objective <- unname(fit@devcomp$cmp[["dev"]])
}
out$minus2logLik <- m2ll
out$feval <- fit@optinfo$feval
out$theta <- unname(getME(fit, "theta"))
out$fixef <- as.list(fixef(fit))
msgs <- c(fit@optinfo$conv$lme4$messages, fit@optinfo$warnings)
if (length(msgs)) out$messages <- as.character(unlist(msgs))
out$lme4 <- as.character(packageVersion("lme4"))
out$R <- paste(R.version$major, R.version$minor, sep = ".")
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA), "\n", sep = "")
