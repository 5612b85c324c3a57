# R's `.` in lmer formulas and ordered factors' polynomial contrasts on every formula path
# (interactions, functions of other columns, random-effect left sides) (issue 11, "Formulas").
# Run: Rscript tests/reference/dot_ordered_lme4.R > tests/reference/dot_ordered_lme4.json
# The data are sleepstudy plus columns built from the row index i = 0..179 (the tests build
# the same columns in Python):
#   x = cos(i), z = sin(i)
#   o  ordered lo < mid < hi < top from Days (0-2, 3-5, 6-8, 9)
#   o2 ordered a < b < c from i %% 3;  u unordered p, q from (i %/% 2) %% 2
suppressMessages({library(lme4); library(jsonlite)})
data(sleepstudy)
d <- sleepstudy
i <- seq_len(nrow(d)) - 1
d$x <- cos(i)
d$z <- sin(i)
dots <- d                               # the data the `.` formulas see
d$o <- factor(c("lo", "mid", "hi", "top")[pmin(d$Days %/% 3, 3) + 1],
              levels = c("lo", "mid", "hi", "top"), ordered = TRUE)
d$o2 <- factor(c("a", "b", "c")[i %% 3 + 1], ordered = TRUE)
d$u <- factor(c("p", "q")[(i %/% 2) %% 2 + 1])
mm <- function(rhs, data = d) {
  X <- model.matrix(as.formula(paste("~", rhs)), data)
  list(rhs = rhs, names = colnames(X), X = unname(X))
}
fit <- function(f, data = d) {
  m <- lmer(as.formula(f), data, REML = FALSE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2,
                                  rhoend = 1e-10, maxfun = 1e5)))
  list(formula = f, fixef_names = names(fixef(m)), fixef = unname(fixef(m)),
       deviance = deviance(m), theta = unname(getME(m, "theta")),
       cnms = getME(m, "cnms"), X = unname(getME(m, "X")))
}
out <- list(
  `_source` = paste("tests/reference/dot_ordered_lme4.R;", R.version.string, "lme4",
                    as.character(packageVersion("lme4"))),
  matrices = list(mm("Days * o"), mm("o * log(Days + 1)"), mm("x:o"), mm("0 + o + x:o"),
                  mm("o * o2"), mm("u * o"), mm("I(Days^2):o + scale(x)"),
                  mm("1 + o2"), mm("0 + o2"), mm("Days:o2"), mm("factor(o2) * x")),
  fits = list(fit("Reaction ~ Days * o + (1 | Subject)"),
              fit("Reaction ~ o * log(Days + 1) + (1 | Subject)"),
              fit("Reaction ~ Days + (o2 | Subject)"),
              fit("Reaction ~ Days + (1 + x:o2 | Subject)"),
              fit("angle ~ recipe * temperature + (1 | recipe:replicate)", lme4::cake)),
  dots = list(fit("Reaction ~ . + (1 | Subject)", dots),
              fit("Reaction ~ . - Subject + (1 | Subject)", dots),
              fit("Reaction ~ . - x - Subject + I(Days^2) + (Days | Subject)", dots),
              fit("Reaction ~ 0 + . + (1 | Subject)", dots),
              fit("Reaction ~ z + . - Subject + (1 | Subject)", dots),
              fit("Reaction ~ .^2 - Subject - Days:Subject - x:Subject - z:Subject + (1 | Subject)", dots),
              fit("Reaction ~ x * . - Subject - x:Subject + (1 | Subject)", dots))
)
cat(toJSON(out, digits = NA, auto_unbox = TRUE), "\n")
