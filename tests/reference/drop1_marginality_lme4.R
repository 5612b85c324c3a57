# drop1 with marginality (lme4 1.1-31, R 4.2.2): the numbers in tests/test_drop1_marginality.py
suppressMessages(library(lme4))
d <- read.csv("sleepstudy.csv"); d$Subject <- factor(d$Subject)
d$g3 <- factor(c("a","b","c")[(d$Days %% 3) + 1])
f <- lmer(Reaction ~ Days * g3 + (1|Subject), d, REML = FALSE)
print(drop1(f, test = "Chisq"))
print(c(AIC(f), logLik(f)), digits = 12)
f2 <- lmer(Reaction ~ Days + g3 + (1|Subject), d, REML = FALSE)
print(drop1(f2, test = "Chisq"))
