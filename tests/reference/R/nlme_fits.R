# The nonlinear reference fits tested in tests/test_nonlinear.py (values copied into
# tests/reference/lme4_nlme_fits.json from ../shared/reference). R 4.2.2, nlme 3.1-162, lme4 1.1-31.
library(nlme); library(lme4)
Th <- as.data.frame(Theoph)
theoph_nlme_ml <- nlme(conc ~ SSfol(Dose, Time, lKe, lKa, lCl), data = Th,
  fixed = lKe + lKa + lCl ~ 1, random = pdDiag(lKa + lCl ~ 1), groups = ~Subject,
  start = c(lKe = -2.5, lKa = 0.5, lCl = -3), method = "ML")
print(logLik(theoph_nlme_ml), digits = 12); print(fixef(theoph_nlme_ml), digits = 10)
print(sqrt(diag(vcov(theoph_nlme_ml))), digits = 10)  # the tested SEs: vcov, not summary's
print(VarCorr(theoph_nlme_ml))                        # summary() rescales ML SEs by sqrt(N/(N-p))
orange_nlme_ml <- nlme(circumference ~ SSlogis(age, Asym, xmid, scal), data = as.data.frame(Orange),
  fixed = Asym + xmid + scal ~ 1, random = Asym ~ 1, groups = ~Tree,
  start = c(Asym = 192, xmid = 727, scal = 348), method = "ML")
print(logLik(orange_nlme_ml), digits = 12); print(fixef(orange_nlme_ml), digits = 10)
print(sqrt(diag(vcov(orange_nlme_ml))), digits = 10); print(VarCorr(orange_nlme_ml))
theoph_nlmer_laplace <- nlmer(conc ~ SSfol(Dose, Time, lKe, lKa, lCl) ~
  0 + lKe + lKa + lCl + (0 + lKa | Subject) + (0 + lCl | Subject), Th,
  start = c(lKe = -2.5, lKa = 0.5, lCl = -3))
print(-2 * logLik(theoph_nlmer_laplace), digits = 12); print(fixef(theoph_nlmer_laplace), digits = 10)
print(getME(theoph_nlmer_laplace, "theta"), digits = 10); print(sigma(theoph_nlmer_laplace), digits = 10)
