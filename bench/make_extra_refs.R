# Compute extra lme4 reference values for the pymc_mixed test-suite.
#
# Usage:
#   Rscript bench/make_extra_refs.R DATA_DIR [OUT_JSON]
#
#   DATA_DIR  directory holding the data-set CSVs and types.json
#   OUT_JSON  default: tests/reference/lme4_extra.json next to this bench/ dir
#
# Every model is fitted with lme4's default control (so that standard errors
# and convergence checks are lme4's defaults) and timed; it is also refitted
# with calc.derivs = FALSE (the benchmark setting) and that fit is timed too.
# All numbers are written with full double precision (jsonlite digits = NA).
#
# Conventions in the output JSON:
#   theta      lme4's relative covariance factor parameters, getME(fit,"theta"),
#              in lme4's order (see "flist_names"/"cnms" where it matters)
#   fixef      {name: value} in lme4's column order; se likewise
#   se         sqrt(diag(vcov(fit))) - for GLMMs lme4's default, i.e. from the
#              finite-difference Hessian (use.hessian = TRUE); nAGQ = 0 fits
#              have no Hessian, so there se == se_rx
#   se_rx      GLMMs only: sqrt(diag(vcov(fit, use.hessian = FALSE))), the
#              approximation from the RX factor at the optimum
#   minus2logLik  -2 * logLik(fit)
#   objective  LMMs: the optimised criterion (deviance for ML, REMLcrit for REML)
#   fit_seconds          elapsed time of the fit with calc.derivs = FALSE
#   fit_seconds_default  elapsed time of the fit with default control
#                        (includes the finite-difference derivatives)
#   messages   lme4 convergence messages of the default-control fit, if any

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1) {
  cat("usage: Rscript make_extra_refs.R DATA_DIR [OUT_JSON]\n", file = stderr())
  quit(status = 2)
}
data_dir <- args[1]
.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
out_path <- if (length(args) >= 2) args[2] else
  file.path(dirname(.this_dir), "tests", "reference", "lme4_extra.json")

source(file.path(.this_dir, "read_typed.R"))
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
types_path <- file.path(data_dir, "types.json")
rd <- function(ds) read_typed(file.path(data_dir, paste0(ds, ".csv")),
                              types_path, ds)

## ---------------------------------------------------------------- helpers
named <- function(x) as.list(x)           # named vector -> JSON object
arr <- function(x) I(unname(as.numeric(x)))  # always a JSON array
mat_json <- function(m) list(names = I(rownames(m)),
                             matrix = lapply(seq_len(nrow(m)),
                                             function(i) arr(m[i, ])))

# fit with default control (timed) and with calc.derivs = FALSE (timed)
timed_fit <- function(expr_default, expr_nod) {
  ws <- character(0)
  t_def <- system.time(
    fit <- withCallingHandlers(expr_default, warning = function(w) {
      ws <<- c(ws, conditionMessage(w)); invokeRestart("muffleWarning")
    }))[["elapsed"]]
  t_nod <- system.time(
    fit_nod <- suppressWarnings(expr_nod))[["elapsed"]]
  # the two fits differ only in the post-fit derivative calculation
  stopifnot(isTRUE(all.equal(getME(fit, "theta"), getME(fit_nod, "theta"),
                             tolerance = 1e-10)))
  list(fit = fit, fit_seconds = round(t_nod, 4),
       fit_seconds_default = round(t_def, 4), warnings = unique(ws))
}

msgs_of <- function(tf) {
  # lme4's convergence messages; caught warnings only if there are none
  # (checkConv's warnings repeat the same messages)
  m <- unlist(tf$fit@optinfo$conv$lme4$messages)
  if (!length(m)) m <- tf$warnings
  m <- unique(c(m, unlist(tf$fit@optinfo$warnings)))
  if (length(m)) I(as.character(m)) else NULL
}

common <- function(tf, glmm = FALSE) {
  fit <- tf$fit
  r <- list(
    minus2logLik = -2 * as.numeric(logLik(fit)),
    theta = arr(getME(fit, "theta")),
    theta_names = I(names(getME(fit, "theta"))),
    fixef = named(fixef(fit)),
    se = named(sqrt(diag(as.matrix(vcov(fit))))))
  names(r$se) <- names(fixef(fit))
  if (glmm) {
    # (vcov warns when the two differ by > 1e-4; both are recorded anyway)
    r$se_rx <- named(setNames(
      sqrt(diag(as.matrix(suppressWarnings(vcov(fit, use.hessian = FALSE))))),
      names(fixef(fit))))
  } else {
    r$objective <- if (isREML(fit)) unname(fit@devcomp$cmp[["REML"]]) else
      unname(fit@devcomp$cmp[["dev"]])
    r$sigma <- sigma(fit)
  }
  r$feval <- fit@optinfo$feval
  r$flist_names <- I(names(getME(fit, "flist")))
  r$fit_seconds <- tf$fit_seconds
  r$fit_seconds_default <- tf$fit_seconds_default
  r$messages <- msgs_of(tf)
  r
}

ranef_json <- function(fit, condVar = FALSE) {
  re <- ranef(fit, condVar = condVar)
  out <- list()
  for (g in names(re)) {
    d <- re[[g]]
    vals <- lapply(seq_len(nrow(d)), function(i) arr(d[i, ]))
    names(vals) <- rownames(d)
    entry <- list(columns = I(colnames(d)), values = vals)
    if (condVar) {
      pv <- attr(d, "postVar")
      k <- dim(pv)[1]
      cv <- lapply(seq_len(dim(pv)[3]), function(j) {
        m <- pv[, , j, drop = TRUE]
        if (k == 1) arr(m) else {
          # [var_1, ..., var_k, cov_12, cov_13, ..., cov_(k-1)k]
          arr(c(diag(m), m[upper.tri(m)]))
        }
      })
      names(cv) <- rownames(d)
      entry$condVar <- cv
    }
    out[[g]] <- entry
  }
  out
}

varcorr_json <- function(fit) {
  vc <- VarCorr(fit)
  res <- lapply(names(vc), function(g) {
    v <- vc[[g]]
    list(sd = named(attr(v, "stddev")),
         corr = if (nrow(v) > 1) mat_json(attr(v, "correlation")) else NULL)
  })
  names(res) <- names(vc)
  res$Residual_sd <- sigma(fit)
  res
}

refs <- list()
refs[["_source"]] <- sprintf(
  "computed with lme4 %s, R %s on %s by bench/make_extra_refs.R",
  as.character(packageVersion("lme4")),
  paste(R.version$major, R.version$minor, sep = "."),
  format(Sys.Date()))
refs[["_conventions"]] <- paste(
  "theta = getME(fit,'theta') in lme4 order (theta_names/flist_names);",
  "se = lme4 default vcov (GLMM: Hessian-based), se_rx = GLMM vcov(use.hessian=FALSE);",
  "minus2logLik = -2*logLik(fit); objective (LMM) = deviance (ML) or REMLcrit (REML);",
  "ranef.values = level -> [coef per column]; ranef.condVar = level ->",
  "[var_1..var_k, cov_12..] from attr(ranef(fit,condVar=TRUE)[[g]],'postVar');",
  "fit_seconds = elapsed fit time with calc.derivs=FALSE,",
  "fit_seconds_default = with lme4 default control")
refs[["_versions"]] <- list(
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  R = R.version.string)

lctrl0 <- lmerControl(calc.derivs = FALSE)
gctrl0 <- glmerControl(calc.derivs = FALSE)

## ------------------------------------------------------------- sleepstudy
sleep <- rd("sleepstudy")
for (reml in c(FALSE, TRUE)) {
  f_form <- Reaction ~ 1 + Days + (1 + Days | Subject)
  tf <- timed_fit(lmer(f_form, sleep, REML = reml),
                  lmer(f_form, sleep, REML = reml, control = lctrl0))
  fit <- tf$fit
  r <- common(tf)
  r$formula <- "Reaction ~ 1 + Days + (1 + Days | Subject)"
  r$REML <- reml
  r$ranef <- ranef_json(fit, condVar = TRUE)
  if (!reml) {
    r$VarCorr <- varcorr_json(fit)
    r$vcov <- mat_json(as.matrix(vcov(fit)))
    r$AIC <- AIC(fit); r$BIC <- BIC(fit)
    r$logLik <- as.numeric(logLik(fit)); r$deviance <- deviance(fit)
    r$fitted_1_5 <- arr(fitted(fit)[1:5])
    r$residuals_1_5 <- arr(residuals(fit)[1:5])
  } else {
    r$VarCorr <- varcorr_json(fit)
    r$vcov <- mat_json(as.matrix(vcov(fit)))
  }
  refs[[if (reml) "sleepstudy_reml" else "sleepstudy_ml"]] <- r
}

## ----------------------------------------------------------------- Pastes
pastes <- rd("Pastes")
tf <- timed_fit(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = FALSE),
                lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = FALSE,
                     control = lctrl0))
r <- common(tf)
r$formula <- "strength ~ 1 + (1 | batch/cask)"
r$REML <- FALSE
r$cnms <- lapply(getME(tf$fit, "cnms"), I)
r$ranef <- ranef_json(tf$fit, condVar = FALSE)
r$VarCorr <- varcorr_json(tf$fit)
refs[["pastes_ml"]] <- r

## --------------------------------------------------------------- Machines
machines <- rd("Machines")
for (reml in c(TRUE, FALSE)) {
  fm <- score ~ Machine + (1 | Worker) + (1 | Worker:Machine)
  tf <- timed_fit(lmer(fm, machines, REML = reml),
                  lmer(fm, machines, REML = reml, control = lctrl0))
  r <- common(tf)
  r$formula <- "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"
  r$REML <- reml
  refs[[if (reml) "machines_reml" else "machines_ml"]] <- r
}

## -------------------------------------------------------------- Orthodont
orth <- rd("Orthodont")
fm <- distance ~ age + Sex + (1 + age | Subject)
tf <- timed_fit(lmer(fm, orth, REML = FALSE),
                lmer(fm, orth, REML = FALSE, control = lctrl0))
r <- common(tf)
r$formula <- "distance ~ age + Sex + (1 + age | Subject)"
r$REML <- FALSE
refs[["orthodont_ml"]] <- r

## ------------------------------------------------------------ cbpp (AGQ)
cbpp <- rd("cbpp")
sat_m2ll <- -2 * sum(dbinom(cbpp$incidence, cbpp$size,
                            cbpp$incidence / cbpp$size, log = TRUE))
cb <- list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
           family = "binomial(logit)",
           saturated_minus2logLik = sat_m2ll,
           note = paste(
             "For nAGQ > 1 lme4's -2*logLik omits the saturated-model term;",
             "minus2logLik_full = minus2logLik_reported + saturated_minus2logLik.",
             "For nAGQ = 1 (Laplace) the reported value is already full scale."),
           fits = list())
for (q in c(1, 5, 9, 15, 25)) {
  fm <- cbind(incidence, size - incidence) ~ period + (1 | herd)
  tf <- timed_fit(glmer(fm, cbpp, binomial, nAGQ = q),
                  glmer(fm, cbpp, binomial, nAGQ = q, control = gctrl0))
  r <- common(tf, glmm = TRUE)
  r$nAGQ <- q
  r$minus2logLik_reported <- r$minus2logLik
  r$minus2logLik_full <- if (q > 1) r$minus2logLik + sat_m2ll else r$minus2logLik
  r$minus2logLik <- NULL
  cb$fits[[paste0("nAGQ_", q)]] <- r
}
refs[["cbpp_agq"]] <- cb

## ------------------------------------------------------------ grouseticks
gt <- rd("grouseticks")
fm <- TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)
fmc <- TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)
for (q in c(1, 0)) {
  tf <- timed_fit(glmer(fm, gt, poisson, nAGQ = q),
                  glmer(fm, gt, poisson, nAGQ = q, control = gctrl0))
  r <- common(tf, glmm = TRUE)
  r$formula <- "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
  r$family <- "poisson(log)"
  r$nAGQ <- q
  refs[[if (q == 1) "grouseticks_laplace" else "grouseticks_agq0"]] <- r
  # same model with the centred covariate (better conditioned; same likelihood
  # surface up to the fixed-effect reparametrisation)
  tf <- timed_fit(glmer(fmc, gt, poisson, nAGQ = q),
                  glmer(fmc, gt, poisson, nAGQ = q, control = gctrl0))
  r <- common(tf, glmm = TRUE)
  r$formula <- "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
  r$family <- "poisson(log)"
  r$nAGQ <- q
  refs[[if (q == 1) "grouseticks_cheight_laplace" else "grouseticks_cheight_agq0"]] <- r
}

## ---------------------------------------------------------------- VerbAgg
va <- rd("VerbAgg")
va$r2Y <- as.numeric(va$r2 == "Y")
fm <- r2Y ~ 1 + Anger + Gender + btype + situ + (1 | id) + (1 | item)
for (q in c(1, 0)) {
  tf <- timed_fit(glmer(fm, va, binomial, nAGQ = q),
                  glmer(fm, va, binomial, nAGQ = q, control = gctrl0))
  r <- common(tf, glmm = TRUE)
  r$formula <- "(r2 == 'Y') ~ 1 + Anger + Gender + btype + situ + (1 | id) + (1 | item)"
  r$family <- "binomial(logit)"
  r$nAGQ <- q
  refs[[if (q == 1) "verbagg_laplace" else "verbagg_agq0"]] <- r
}

## -------------------------------------------------------- negative binomial
fm <- TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)
tf <- timed_fit(glmer.nb(fm, data = gt),
                glmer.nb(fm, data = gt, control = gctrl0))
r <- common(tf, glmm = TRUE)
r$formula <- "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"
r$family <- family(tf$fit)$family
r$nb_theta <- getME(tf$fit, "glmer.nb.theta")
r$note <- paste("glmer.nb: nb_theta = getME(fit,'glmer.nb.theta') is the NB",
                "dispersion (Var = mu + mu^2/nb_theta); theta is the random-",
                "effect parameter; minus2logLik at nb_theta fixed as fitted;",
                "feval is that of the final glmer refit only")
refs[["grouseticks_nb"]] <- r

## --------------------------------------------------------------- Gamma GLMM
# cake: angle ~ recipe + temp_c + (1 | replicate), Gamma(log), temp centred
# (uncentred temp gives lme4 'nearly unidentifiable' warnings).
cake <- rd("cake")
cake$temp_c <- cake$temp - mean(cake$temp)
fm <- angle ~ recipe + temp_c + (1 | replicate)
tf <- timed_fit(glmer(fm, cake, Gamma(link = "log")),
                glmer(fm, cake, Gamma(link = "log"), control = gctrl0))
r <- common(tf, glmm = TRUE)
r$formula <- "angle ~ recipe + temp_c + (1 | replicate), temp_c = temp - mean(temp)"
r$family <- "Gamma(log)"
r$mean_temp <- mean(cake$temp)
r$sigma <- sigma(tf$fit)
r$note <- paste(
  "CAUTION: lme4 does not estimate the Gamma dispersion by ML. The Laplace",
  "objective uses the family aic() with dispersion = deviance/n at the current",
  "mu, so minus2logLik is lme4-specific; sigma(fit) is lme4's post-hoc residual",
  "scale. Compare fixef/theta loosely, and the likelihood only with the same",
  "dispersion convention. glmmTMB_crosscheck holds a full-ML (Laplace) fit of",
  "the same model with glmmTMB, which disagrees notably (e.g. replicate sd).")
if (requireNamespace("glmmTMB", quietly = TRUE)) {
  tt <- system.time(ftmb <- glmmTMB::glmmTMB(fm, cake,
                                             family = Gamma(link = "log")))
  fe <- glmmTMB::fixef(ftmb)$cond
  r$glmmTMB_crosscheck <- list(
    glmmTMB = as.character(packageVersion("glmmTMB")),
    minus2logLik = -2 * as.numeric(logLik(ftmb)),
    fixef = named(fe),
    se = named(setNames(sqrt(diag(vcov(ftmb)$cond)), names(fe))),
    replicate_sd = unname(attr(glmmTMB::VarCorr(ftmb)$cond$replicate, "stddev")),
    sigma = sigma(ftmb),
    note = "glmmTMB Gamma: sigma = dispersion, shape = 1/sigma^2",
    fit_seconds = round(tt[["elapsed"]], 4))
}
refs[["cake_gamma_laplace"]] <- r

## ------------------------------------------------------------------ write
dir.create(dirname(out_path), recursive = TRUE, showWarnings = FALSE)
writeLines(jsonlite::toJSON(refs, auto_unbox = TRUE, digits = NA,
                            pretty = TRUE, null = "null"),
           out_path)
cat("wrote", out_path, "\n")
for (k in setdiff(names(refs), c("_source", "_conventions", "_versions"))) {
  x <- refs[[k]]
  if (!is.null(x$fits)) {
    for (kk in names(x$fits))
      cat(sprintf("%-28s %-8s %8.4f s  -2ll(full)=%.9f\n", k, kk,
                  x$fits[[kk]]$fit_seconds, x$fits[[kk]]$minus2logLik_full))
  } else {
    cat(sprintf("%-28s %8.4f s  (default ctrl %8.4f s)  -2ll=%.9f%s\n", k,
                x$fit_seconds, x$fit_seconds_default, x$minus2logLik,
                if (length(x$messages)) "  [messages]" else ""))
  }
}
