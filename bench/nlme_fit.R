# nlme / lme4::nlmer peer engine for the nonlinear-model benchmarks.
#
# Usage:
#   Rscript bench/nlme_fit.R CASE [CSV_PATH] [REPEATS] [START]
#
#   CASE      theoph_lme   nlme, Lindstrom-Bates ML (MATLAB nlmefit "LME")
#             theoph_foce  lme4::nlmer, Laplace (nAGQ = 1; the FOCE analogue)
#             sim2000_lme  as theoph_lme on simulated data (CSV_PATH required)
#             sim2000_foce as theoph_foce on simulated data (CSV_PATH required)
#   CSV_PATH  columns Subject, Time, conc, Dose (Dose in mg). For theoph_* it
#             defaults to the bundled Theoph data, where Dose (mg/kg) is
#             turned into mg as Dose * Wt (nlmixr2's theo_sd).
#   REPEATS   number of timed fits (default 5); seconds = their median
#   START     "lka,lcl,lv" start values (default 0.45,1,3.45 = Theoph's scale)
#
# Model (all cases): one compartment, first-order absorption, single dose at
# Time 0, parametrised by log ka, log CL, log V:
#   conc = Dose*ka/(V*(ka - CL/V)) * (exp(-CL/V*Time) - exp(-ka*Time)) + e,
# random effects on lka, lcl, lv (diagonal covariance), additive error e.
# Only the fit is timed. Prints one JSON line: case, engine, seconds,
# all_seconds, logLik, beta {lka, lcl, lv}, re_sd, sigma, iterations, n_obs,
# n_subjects.

args <- commandArgs(trailingOnly = TRUE)
usage <- "usage: Rscript nlme_fit.R CASE [CSV_PATH] [REPEATS] [START]\n"
if (length(args) < 1) { cat(usage, file = stderr()); quit(status = 2) }
case <- args[1]
cases <- c("theoph_lme", "theoph_foce", "sim2000_lme", "sim2000_foce")
if (!case %in% cases) {
  cat("unknown CASE '", case, "'; one of ", paste(cases, collapse = ", "),
      "\n", sep = "", file = stderr())
  quit(status = 2)
}
csv_path <- if (length(args) >= 2 && nzchar(args[2])) args[2] else NA
repeats <- if (length(args) >= 3) as.integer(args[3]) else 5L
start <- c(lka = 0.45, lcl = 1, lv = 3.45)
if (length(args) >= 4) {
  start[] <- as.numeric(strsplit(args[4], ",")[[1]])
  if (length(start) != 3 || anyNA(start)) stop("START must be 'lka,lcl,lv'")
}

.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
source(file.path(.this_dir, "read_typed.R"))
source(file.path(.this_dir, "nlme_common.R"))

if (is.na(csv_path)) {
  if (!startsWith(case, "theoph")) stop("CASE ", case, " needs CSV_PATH")
  dd <- file.path(dirname(.this_dir), "pymc_mixed", "datasets", "data")
  dat <- read_typed(file.path(dd, "Theoph.csv.gz"), file.path(dd, "types.json"),
                    "Theoph")
  dat$Dose <- dat$Dose * dat$Wt
} else {
  dat <- utils::read.csv(csv_path, check.names = FALSE)
  miss <- setdiff(c("Subject", "Time", "conc", "Dose"), names(dat))
  if (length(miss))
    stop("CSV ", csv_path, " lacks column(s): ", paste(miss, collapse = ", "))
  # keep the subjects in order of first appearance
  dat$Subject <- factor(dat$Subject, levels = unique(dat$Subject))
}
dat$dose <- dat$Dose

lme <- endsWith(case, "_lme")
env <- new.env()
env$dat <- dat; env$pk1_grad <- pk1_grad; env$start <- start
call <- if (lme) quote(
  nlme(conc ~ dose * exp(lka) / (exp(lv) * (exp(lka) - exp(lcl - lv))) *
         (exp(-exp(lcl - lv) * Time) - exp(-exp(lka) * Time)),
       data = dat, fixed = lka + lcl + lv ~ 1,
       random = pdDiag(lka + lcl + lv ~ 1), groups = ~Subject,
       start = start, method = "ML")) else quote(
  nlmer(conc ~ pk1_grad(dose, Time, lka, lcl, lv) ~
          0 + lka + lcl + lv + (0 + lka | Subject) + (0 + lcl | Subject) +
          (0 + lv | Subject), data = dat, start = start))

tf <- timed_eval(call, env, n = repeats)
fit <- tf$fit
if (lme) {
  sds <- sqrt(diag(pdMatrix(fit$modelStruct$reStruct[[1]]))) * fit$sigma
  iters <- fit$numIter; sig <- fit$sigma; engine <- paste("nlme", packageVersion("nlme"))
} else {
  vc <- VarCorr(fit)
  sds <- unlist(lapply(vc, function(v) attr(v, "stddev")))
  names(sds) <- unlist(lapply(vc, function(v) names(attr(v, "stddev"))))
  iters <- fit@optinfo$feval; sig <- sigma(fit)
  engine <- paste("lme4::nlmer", packageVersion("lme4"))
}
out <- list(case = case, engine = engine, seconds = tf$seconds,
            all_seconds = tf$all_seconds, logLik = as.numeric(logLik(fit)),
            beta = named(fixef(fit)), re_sd = named(sds), sigma = sig,
            iterations = iters, n_obs = nrow(dat),
            n_subjects = nlevels(dat$Subject), warnings = tf$warnings)
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, null = "null"), "\n")
