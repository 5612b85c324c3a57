# R's scale() (n - 1 standard deviation) and poly() column names in lmer fixed effects.
# Run: Rscript tests/reference/transforms_lme4.R
suppressMessages(library(lme4))
options(digits = 15)
f1 <- lmer(Reaction ~ scale(Days) + (1 | Subject), sleepstudy)
cat("scale", names(fixef(f1)), "|", fixef(f1), "| REMLcrit", REMLcrit(f1), "\n")
f2 <- lmer(Reaction ~ poly(Days, 2) + (1 | Subject), sleepstudy)
cat("poly", names(fixef(f2)), "|", fixef(f2), "| REMLcrit", REMLcrit(f2), "\n")
