# Shared helpers for the nonlinear (nlme / lme4::nlmer) reference and bench
# scripts: running a quoted call and timing it, and turning nlme and nlmer
# fits into plain lists for JSON.
#
# Conventions (also in tests/reference/README.md):
#   arrays of per-observation values follow the data's row order;
#   ranef.values maps level -> [value per column], columns named in
#   ranef.columns; matrices are {names, matrix (list of rows)}.

suppressPackageStartupMessages({
  library(jsonlite)
  library(nlme)
  library(lme4)
})

named <- function(x) as.list(x)               # named vector -> JSON object
arr <- function(x) I(unname(as.numeric(x)))   # always a JSON array
mat_json <- function(m) list(names = I(rownames(m)),
                             matrix = lapply(seq_len(nrow(m)),
                                             function(i) arr(m[i, ])))

# Evaluate `call` (a quoted call) in `env` n times; return the first fit
# and the median elapsed seconds. Warnings are collected, not printed.
timed_eval <- function(call, env, n = 5) {
  ws <- character(0)
  secs <- numeric(n)
  fit <- NULL
  for (i in seq_len(n)) {
    secs[i] <- system.time(
      f <- withCallingHandlers(eval(call, env), warning = function(w) {
        ws <<- c(ws, conditionMessage(w)); invokeRestart("muffleWarning")
      }))[["elapsed"]]
    if (i == 1) fit <- f
  }
  list(fit = fit, seconds = median(secs), all_seconds = arr(secs),
       warnings = if (length(ws)) I(unique(ws)) else NULL)
}

# One-line deparse of a call (the exact call that was evaluated).
call_string <- function(call)
  paste(trimws(deparse(call, width.cutoff = 500L)), collapse = " ")

ranef_rows <- function(d) {
  d <- as.data.frame(d)
  vals <- lapply(seq_len(nrow(d)), function(i) arr(unlist(d[i, ])))
  names(vals) <- rownames(d)
  list(columns = I(colnames(d)), values = vals)
}

# nlme fit -> list
nlme_json <- function(tf, call, dataset) {
  fit <- tf$fit
  ll <- logLik(fit)
  beta <- fixef(fit)
  V <- fit$varFix
  re <- fit$modelStruct$reStruct
  if (length(re) != 1) stop("nlme_json handles one grouping level only")
  cov_re <- pdMatrix(re[[1]]) * fit$sigma^2
  sds <- sqrt(diag(cov_re))
  r <- list(
    engine = "nlme", engine_version = as.character(packageVersion("nlme")),
    dataset = dataset, call = call_string(call), method = fit$method,
    logLik = as.numeric(ll), minus2logLik = -2 * as.numeric(ll),
    df = attr(ll, "df"), AIC = AIC(fit), BIC = BIC(fit),
    fixef = named(beta),
    se = named(setNames(sqrt(diag(V)), names(beta))),
    vcov = mat_json(V),
    group = names(re),
    pdClass = class(re[[1]])[1],
    re_sd = named(sds),
    re_corr = if (length(sds) > 1) mat_json(cov2cor(cov_re)) else NULL,
    sigma = fit$sigma)
  vs <- fit$modelStruct$varStruct
  if (!is.null(vs)) {
    r$varFunc <- class(vs)[1]
    r$varFunc_coef <- named(coef(vs, unconstrained = FALSE))
  }
  r$ranef <- ranef_rows(ranef(fit))
  r$fitted_individual <- arr(fitted(fit, level = 1))
  r$fitted_population <- arr(fitted(fit, level = 0))
  r$iterations <- fit$numIter
  r$apVar_ok <- is.matrix(fit$apVar)
  r$fit_seconds <- tf$seconds
  r$fit_seconds_all <- tf$all_seconds
  r$warnings <- tf$warnings
  r
}

varcorr_json <- function(fit) {
  vc <- VarCorr(fit)
  res <- lapply(names(vc), function(g) {
    v <- vc[[g]]
    list(sd = named(attr(v, "stddev")),
         corr = if (nrow(v) > 1) mat_json(attr(v, "correlation")) else NULL)
  })
  names(res) <- names(vc)
  res
}

# nlmer fit -> list. `nlmod` is the quoted nonlinear model (middle part of
# the nlmer formula); the population fit evaluates it at the fixed effects.
nlmer_json <- function(tf, call, dataset, data, nlmod) {
  fit <- tf$fit
  ll <- logLik(fit)
  beta <- fixef(fit)
  vw <- character(0)   # vcov falls back to RX when the Hessian is not PD
  V <- as.matrix(withCallingHandlers(vcov(fit), warning = function(w) {
    vw <<- c(vw, conditionMessage(w)); invokeRestart("muffleWarning")
  }))
  dimnames(V) <- list(names(beta), names(beta))
  pop <- eval(nlmod, c(as.list(data), as.list(beta)))
  attributes(pop) <- NULL
  re <- ranef(fit)
  r <- list(
    engine = "lme4::nlmer", engine_version = as.character(packageVersion("lme4")),
    dataset = dataset, call = call_string(call), method = "Laplace",
    logLik = as.numeric(ll), minus2logLik = -2 * as.numeric(ll),
    df = attr(ll, "df"), AIC = AIC(fit), BIC = BIC(fit),
    fixef = named(beta),
    se = named(setNames(sqrt(diag(V)), names(beta))),
    vcov = mat_json(V),
    theta = arr(getME(fit, "theta")),
    theta_names = I(names(getME(fit, "theta"))),
    VarCorr = varcorr_json(fit),
    sigma = sigma(fit),
    ranef = lapply(re, ranef_rows),
    fitted_individual = arr(fitted(fit)),
    fitted_population = arr(pop),
    iterations = fit@optinfo$feval,
    messages = {
      m <- unique(c(unlist(fit@optinfo$conv$lme4$messages),
                    unlist(fit@optinfo$warnings)))
      if (length(m)) I(as.character(m)) else NULL
    },
    vcov_warnings = if (length(vw)) I(vw) else NULL,
    fit_seconds = tf$seconds,
    fit_seconds_all = tf$all_seconds,
    warnings = tf$warnings)
  r
}

# The one-compartment first-order-absorption model in (log ka, log CL, log V)
# with the dose in mg, for nlmer (needs the gradient) and nlme.
pk1_expr <- quote(dose * exp(lka) / (exp(lv) * (exp(lka) - exp(lcl - lv))) *
                  (exp(-exp(lcl - lv) * Time) - exp(-exp(lka) * Time)))
pk1_grad <- deriv(pk1_expr, c("lka", "lcl", "lv"),
                  function(dose, Time, lka, lcl, lv) {})
