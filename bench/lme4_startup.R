# Whole-process lme4 benchmark: time e.g.
#   time Rscript bench/lme4_startup.R <data>/sleepstudy.csv [<data>/types.json]
# Loads lme4, reads the sleepstudy CSV (Subject as a factor with the level
# order from types.json), fits the ML model and prints the fit summary.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1) {
  cat("usage: Rscript lme4_startup.R SLEEPSTUDY_CSV [TYPES_JSON]\n", file = stderr())
  quit(status = 2)
}
types_path <- if (length(args) >= 2) args[2] else
  file.path(dirname(args[1]), "types.json")
suppressPackageStartupMessages(library(lme4))
.this_dir <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) getwd() else dirname(normalizePath(f[1]))
})
source(file.path(.this_dir, "read_typed.R"))
sleepstudy <- read_typed(args[1], types_path, "sleepstudy")
fit <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), data = sleepstudy,
            REML = FALSE, control = lmerControl(calc.derivs = FALSE))
print(summary(fit))
