# lme4's order of random-effects terms with tied numbers of levels, and R's order of fixed-effects
# columns (main effects before interactions) (issue 7, item 12).
# Run: Rscript tests/reference/order_lme4.R
suppressMessages(library(lme4))
options(digits = 15)
data(sleepstudy)
d <- sleepstudy
i <- seq_len(nrow(d)) - 1
d$h <- factor(i %% 18)            # 18 levels, tied with Subject
d$w <- factor(i %% 36)            # 36 levels
d$d3 <- factor(c("a", "b", "c")[d$Days %% 3 + 1])
d$x <- cos(i)
f1 <- lmer(Reaction ~ Days + (1 | Subject) + (1 | h) + (1 | w), d, REML = FALSE)
cat("ties theta_names", names(getME(f1, "theta")), "\n")
cat("ties theta", getME(f1, "theta"), "\n")
cat("ties objective", deviance(f1), "\n")
f2 <- lmer(Reaction ~ Days * d3 + x + (1 | Subject), d, REML = FALSE)
cat("fixed names", names(fixef(f2)), "\n")
cat("fixed beta", fixef(f2), "\n")
cat("fixed objective", deviance(f2), "\n")
