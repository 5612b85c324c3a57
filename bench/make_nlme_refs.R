# Reference fits of nonlinear mixed models with nlme and lme4::nlmer, for the
# pymc_mixed NLMM / SAEM tests.
#
# Usage:
#   Rscript bench/make_nlme_refs.R [DATA_DIR] [OUT_JSON]
#
#   DATA_DIR  directory with the data-set CSVs (.csv or .csv.gz) and types.json
#             (default: pymc_mixed/datasets/data next to this bench/ dir)
#   OUT_JSON  default: tests/reference/nlme_extra.json
#
# Each case records the exact call that was evaluated (`call`); the data
# are the bundled CSVs read typed (bench/read_typed.R), so grouping must be
# given with `groups = ~Subject` (the CSVs are not groupedData objects).
# Fit times are the median of 5 evaluations of that call.
# Field meanings: see tests/reference/README.md ("nlme_extra.json").

args <- commandArgs(trailingOnly = TRUE)
.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
data_dir <- if (length(args) >= 1) args[1] else
  file.path(dirname(.this_dir), "pymc_mixed", "datasets", "data")
out_path <- if (length(args) >= 2) args[2] else
  file.path(dirname(.this_dir), "tests", "reference", "nlme_extra.json")

source(file.path(.this_dir, "read_typed.R"))
source(file.path(.this_dir, "nlme_common.R"))

rd <- function(ds) {
  p <- file.path(data_dir, paste0(ds, ".csv"))
  if (!file.exists(p)) p <- paste0(p, ".gz")
  read_typed(p, file.path(data_dir, "types.json"), ds)
}

env <- new.env()
env$Theoph <- rd("Theoph")
env$Theoph$dose <- env$Theoph$Dose * env$Theoph$Wt   # mg, as nlmixr2's theo_sd
env$Orange <- rd("Orange")
env$Indometh <- rd("Indometh")
env$Loblolly <- rd("Loblolly")
env$CO2 <- rd("CO2")
env$pk1_grad <- pk1_grad

refs <- list()
refs[["_source"]] <- sprintf(
  "computed with nlme %s, lme4 %s, R %s on %s by bench/make_nlme_refs.R",
  as.character(packageVersion("nlme")), as.character(packageVersion("lme4")),
  paste(R.version$major, R.version$minor, sep = "."), format(Sys.Date()))
refs[["_versions"]] <- list(
  nlme = as.character(packageVersion("nlme")),
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  R = R.version.string)

# Run one nlme case; if it fails, record the error instead (optional cases).
nlme_case <- function(key, call, dataset, note = NULL, optional = FALSE) {
  res <- tryCatch({
    tf <- timed_eval(call, env)
    r <- nlme_json(tf, call, dataset)
    r$note <- note
    r
  }, error = function(e) {
    if (!optional) stop(e)
    list(call = call_string(call), error = conditionMessage(e), note = note)
  })
  refs[[key]] <<- res
  cat(sprintf("%-28s %s\n", key, if (!is.null(res$error))
    paste("FAILED:", res$error) else
    sprintf("%8.4f s  logLik=%.9f  iter=%s", res$fit_seconds, res$logLik,
            res$iterations)))
  invisible(res)
}

nlmer_case <- function(key, call, dataset, nlmod, note = NULL) {
  tf <- timed_eval(call, env)
  r <- nlmer_json(tf, call, dataset, env[[dataset]], nlmod)
  r$note <- note
  refs[[key]] <<- r
  cat(sprintf("%-28s %8.4f s  logLik=%.9f  feval=%s\n", key, r$fit_seconds,
              r$logLik, r$iterations))
  invisible(r)
}

## ------------------------------------------------------------ 1. Theoph SSfol
# Reproduces lme4_nlme_fits.json's theoph_nlme_ml exactly (logLik, fixef).
nlme_case("theoph_nlme_ml", quote(
  nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
       fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1),
       groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
       method = "ML")), "Theoph")
nlme_case("theoph_nlme_reml", quote(
  nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
       fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1),
       groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
       method = "REML")), "Theoph")
r <- nlme_case("theoph_nlme_ml_symm3", quote(
  nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
       fixed = lKe + lKa + lCl ~ 1, random = pdSymm(lKe + lKa + lCl ~ 1),
       groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
       method = "ML")), "Theoph", optional = TRUE)
if (!is.null(r$error) || !isTRUE(r$apVar_ok))
  nlme_case("theoph_nlme_ml_diag3", quote(
    nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
         fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKe + lKa + lCl ~ 1),
         groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
         method = "ML")), "Theoph", optional = TRUE)

# Tight tolerances: nlme's logLik is that of the linearised model at the last
# Lindstrom-Bates iteration, so a converged fixed point is the number an
# independent implementation should reproduce (start-independent to ~1e-6).
tight <- quote(nlmeControl(tolerance = 1e-8, pnlsTol = 1e-6, msTol = 1e-10))
nlme_case("theoph_nlme_ml_tight", bquote(
  nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
       fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1),
       groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
       method = "ML", control = .(tight))), "Theoph")

## --------------------------------------------- 2. Theoph, dose in mg (SAEM case)
pk_note <- paste(
  "dose = Dose * Wt (mg, as nlmixr2's theo_sd); conc = dose*ka/(V*(ka-k)) *",
  "(exp(-k*Time) - exp(-ka*Time)), ka = exp(lka), CL = exp(lcl), V = exp(lv),",
  "k = CL/V; additive error. nlmixr2's published SAEM: lka 0.464, lcl 1.01,",
  "lv 3.46, add.sd 0.696.")
nlme_case("theoph_mg_nlme_ml", quote(
  nlme(conc ~ dose * exp(lka) / (exp(lv) * (exp(lka) - exp(lcl - lv))) *
         (exp(-exp(lcl - lv) * Time) - exp(-exp(lka) * Time)),
       data = Theoph, fixed = lka + lcl + lv ~ 1,
       random = pdDiag(lka + lcl + lv ~ 1), groups = ~Subject,
       start = c(lka = 0.45, lcl = 1, lv = 3.45), method = "ML")),
  "Theoph", note = pk_note)
nlmer_case("theoph_mg_nlmer_laplace", quote(
  nlmer(conc ~ pk1_grad(dose, Time, lka, lcl, lv) ~
          0 + lka + lcl + lv + (0 + lka | Subject) + (0 + lcl | Subject) +
          (0 + lv | Subject),
        data = Theoph, start = c(lka = 0.45, lcl = 1, lv = 3.45))),
  "Theoph", nlmod = pk1_expr, note = paste(pk_note,
  "pk1_grad = deriv(<that expression>, c('lka','lcl','lv'),",
  "function(dose, Time, lka, lcl, lv) {}); nAGQ = 1."))

## ------------------------------------------------------- 3. Indometh biexp
nlme_case("indometh_nlme_ml", quote(
  nlme(conc ~ SSbiexp(time, A1, lrc1, A2, lrc2), data = Indometh,
       fixed = A1 + lrc1 + A2 + lrc2 ~ 1, random = pdDiag(A1 + lrc1 + A2 ~ 1),
       groups = ~Subject,
       start = c(A1 = 2.83, lrc1 = 0.77, A2 = 0.46, lrc2 = -1.35),
       method = "ML")), "Indometh",
  note = "Pinheiro & Bates fm2Indom.nlme (random pdDiag(A1 + lrc1 + A2 ~ 1))")

## -------------------------------------------------------- 4. Orange logistic
# Reproduces lme4_nlme_fits.json's orange_nlme_ml (that needs this start: nlme's
# default tolerances stop the Lindstrom-Bates iteration early, so the logLik
# moves by ~1e-5 with the start; see the *_tight cases).
orange_start <- quote(c(Asym = 192, xmid = 728, scal = 353))
nlme_case("orange_nlme_ml", bquote(
  nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,
       fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1, groups = ~Tree,
       start = .(orange_start), method = "ML")), "Orange")
nlme_case("orange_nlme_reml", bquote(
  nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,
       fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1, groups = ~Tree,
       start = .(orange_start), method = "REML")), "Orange")
nlme_case("orange_nlme_ml_tight", bquote(
  nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,
       fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1, groups = ~Tree,
       start = .(orange_start), method = "ML", control = .(tight))), "Orange")
nlme_case("orange_nlme_ml_asym_xmid", bquote(
  nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = Orange,
       fixed = Asym + xmid + scal ~ 1, random = pdDiag(Asym + xmid ~ 1),
       groups = ~Tree, start = .(orange_start), method = "ML")), "Orange",
  optional = TRUE)

## ----------------------------------------------------- 5. Loblolly and CO2
nlme_case("loblolly_nlme_ml", quote(
  nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly,
       fixed = Asym + R0 + lrc ~ 1, random = pdDiag(Asym + R0 ~ 1),
       groups = ~Seed, start = c(Asym = 94.13, R0 = -8.25, lrc = -3.22),
       method = "ML")), "Loblolly")
nlme_case("co2_nlme_ml", quote(
  nlme(uptake ~ SSasympOff(conc, Asym, lrc, c0), data = CO2,
       fixed = list(Asym ~ Type * Treatment, lrc + c0 ~ 1),
       random = pdDiag(Asym + lrc ~ 1), groups = ~Plant,
       start = c(32.4, 0, 0, 0, -4.56, 49.3), method = "ML")), "CO2",
  note = "covariates in the fixed part: names Asym.(Intercept), Asym.TypeMississippi, ...",
  optional = TRUE)

## --------------------------------------------------------------- 6. nlmer
# Reproduces lme4_nlme_fits.json's theoph_nlmer_laplace exactly. CAUTION
# (nlmer 1.1-31): `start` must list the parameters in the order of the model
# function's gradient columns (SSfol: lKe, lKa, lCl), whatever the order of
# the fixed terms; start = c(lKa=, lCl=, lKe=) silently converges to a wrong
# fit (logLik -195.94). The order of the fixed terms changes where the
# optimiser stops: see theoph_nlmer_laplace_kekacl.
nlmer_nlmod <- quote(SSfol(Dose, Time, lKe, lKa, lCl))
nlmer_case("theoph_nlmer_laplace", quote(
  nlmer(conc ~ SSfol(Dose, Time, lKe, lKa, lCl) ~
          0 + lKa + lCl + lKe + (0 + lKa | Subject) + (0 + lCl | Subject),
        data = Theoph, start = c(lKe = -2.4, lKa = 0.5, lCl = -3.25))),
  "Theoph", nlmod = nlmer_nlmod)
nlmer_case("theoph_nlmer_laplace_kekacl", quote(
  nlmer(conc ~ SSfol(Dose, Time, lKe, lKa, lCl) ~
          0 + lKe + lKa + lCl + (0 + lKa | Subject) + (0 + lCl | Subject),
        data = Theoph, start = c(lKe = -2.4, lKa = 0.5, lCl = -3.25))),
  "Theoph", nlmod = nlmer_nlmod,
  note = "same model, fixed terms in SSfol order; logLik ~1.1e-5 higher")
nlmer_case("orange_nlmer_laplace", quote(
  nlmer(circumference ~ SSlogis(age, Asym, xmid, scal) ~ Asym | Tree,
        data = Orange, start = c(Asym = 200, xmid = 725, scal = 350))),
  "Orange", nlmod = quote(SSlogis(age, Asym, xmid, scal)))
nlme_case("theoph_nlme_ml_varpower", quote(
  nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Theoph,
       fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1),
       groups = ~Subject, start = c(lKe = -2.4, lKa = 0.45, lCl = -3.2),
       weights = varPower(), method = "ML")), "Theoph", optional = TRUE,
  note = paste("varPower(): Var(e) = sigma^2 * |fitted|^(2*power).",
               "Fails: the model predicts 0 at Time 0 (zero variance);",
               "varConstPower() fails too (nlminb false convergence)."))

## ------------------------------------------------------------------ write
dir.create(dirname(out_path), recursive = TRUE, showWarnings = FALSE)
writeLines(jsonlite::toJSON(refs, auto_unbox = TRUE, digits = NA,
                            pretty = TRUE, null = "null", na = "null"), out_path)
cat("wrote", out_path, "\n")
