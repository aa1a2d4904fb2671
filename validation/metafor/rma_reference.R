# Regenerate tests/data/rma_reference.json: metafor's rma() (intercept-only random-effects model)
# for every tau^2 estimator and both tests on eight datasets, plus the Q-profile tau^2 interval.
#
# Run from the repository root:  Rscript validation/metafor/rma_reference.R
# Needs R with metafor and metadat (Debian: r-cran-metafor r-cran-metadat) and jsonlite.
#
# metafor's default stopping rules (threshold 1e-5 for Fisher scoring, uniroot tol ~1.2e-4) leave
# tau^2 accurate to ~4-5 digits only, so every fit uses a tight control; confint() gets a large
# tau2.max so that the Q-profile upper bound is never capped at metafor's default of 100.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

fit_control <- list(tol = 1e-12, threshold = 1e-12, maxiter = 10000)
ci_control <- list(tau2.max = 1e4, tol = 1e-12, maxiter = 10000)

bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
collins <- escalc("OR", ai = pre.xti, n1i = pre.nti, ci = pre.xci, n2i = pre.nci, data = dat.collins1985b)
normand <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                  data = dat.normand1999)
molloy <- escalc("ZCOR", ri = ri, ni = ni, data = dat.molloy2014)

datasets <- list(
  bcg_logrr = list(
    yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi),
    source = 'escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)'),
  raudenbush1985_smd = list(
    yi = dat.raudenbush1985$yi, vi = dat.raudenbush1985$vi,
    source = "dat.raudenbush1985$yi, dat.raudenbush1985$vi"),
  collins1985b_logor = list(
    yi = as.numeric(collins$yi), vi = as.numeric(collins$vi),
    source = 'escalc("OR", ai=pre.xti, n1i=pre.nti, ci=pre.xci, n2i=pre.nci, data=dat.collins1985b)'),
  eight_schools = list(
    yi = c(28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16),
    vi = c(14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6)^2,
    source = "Rubin (1981) eight schools; vi = se^2"),
  bcg_alternate_k2 = list(
    yi = as.numeric(bcg$yi[bcg$alloc == "alternate"]),
    vi = as.numeric(bcg$vi[bcg$alloc == "alternate"]),
    source = 'BCG log RR, subset alloc == "alternate" (trials 5 and 6)'),
  bcg_k1 = list(
    yi = as.numeric(bcg$yi[1]), vi = as.numeric(bcg$vi[1]),
    source = "BCG log RR, trial 1 only (k = 1)"),
  normand1999_md = list(
    yi = as.numeric(normand$yi), vi = as.numeric(normand$vi),
    source = 'escalc("MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)'),
  molloy2014_zcor = list(
    yi = as.numeric(molloy$yi), vi = as.numeric(molloy$vi),
    source = 'escalc("ZCOR", ri=ri, ni=ni, data=dat.molloy2014)'),
  pymare_toy = list(
    yi = c(-1, 0.5, 0.5, 0.5, 1, 1, 2, 10), vi = c(1, 1, 2.4, 0.5, 1, 1, 1.2, 1.5),
    source = "PyMARE issue 75 toy data"),
  bimodal_a = list(
    yi = c(-3.66, -3.2224, 4.1977, 0.8796, 0.319), vi = c(2.45307, 6.57516, 8.3553, 0.3988, 0.023),
    source = paste("synthetic: REML/ML likelihood with a local maximum at tau^2 = 0 and a higher",
                   "interior one (found by a random search in fibrosim's tests)")),
  bimodal_b = list(
    yi = c(-2.0031, 0.4897, -2.4923, 7.0374, -2.1124),
    vi = c(7.54007, 0.01349, 1.94907, 3.71819, 4.02921),
    source = "synthetic: ML likelihood with local maxima at 0 and at an interior tau^2"),
  equal_variances = list(
    yi = c(3, 2, 5, 4, 6), vi = rep(1, 5),
    source = "metafor test_misc_handling_nas.r toy data (vi = 1)")
)

methods <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "SJIT")
tests <- c("z", "knha")

num <- function(x) if (is.null(x) || length(x) == 0 || is.na(x)) NA_real_ else as.numeric(x)

fits <- list()
for (dname in names(datasets)) {
  d <- datasets[[dname]]
  for (method in methods) {
    for (test in tests) {
      call <- sprintf(
        'rma(yi, vi, method="%s", test="%s", control=list(tol=1e-12, threshold=1e-12, maxiter=10000))',
        method, test)
      # k = 1: metafor warns and switches test to "z"; that is the behaviour being recorded.
      res <- withCallingHandlers(
        rma(d$yi, d$vi, method = method, test = test, control = fit_control),
        warning = function(w) invokeRestart("muffleWarning"))
      pred <- predict(res)
      entry <- list(
        dataset = dname, method = method, test = test, call = call, k = res$k,
        estimate = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
        ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
        pi_low = num(pred$pi.lb), pi_high = num(pred$pi.ub),
        tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
        i2 = num(res$I2), h2 = num(res$H2), q = num(res$QE), q_pvalue = num(res$QEp),
        df = num(res$ddf)
      )
      if (res$k > 1 && method != "EE") {
        ci <- confint(res, control = ci_control)$random
        entry$qprofile_call <- "confint(fit, control=list(tau2.max=1e4, tol=1e-12, maxiter=10000))"
        entry$tau2_ci <- as.numeric(ci["tau^2", c("ci.lb", "ci.ub")])
        entry$tau_ci <- as.numeric(ci["tau", c("ci.lb", "ci.ub")])
        entry$i2_ci <- as.numeric(ci["I^2(%)", c("ci.lb", "ci.ub")])
        entry$h2_ci <- as.numeric(ci["H^2", c("ci.lb", "ci.ub")])
      }
      fits[[length(fits) + 1]] <- entry
    }
  }
}

# other confidence levels (level= in rma and confint), BCG log RR
level_fits <- list()
for (spec in list(list(method = "REML", test = "knha", level = 90),
                  list(method = "DL", test = "z", level = 80),
                  list(method = "PM", test = "z", level = 99))) {
  d <- datasets$bcg_logrr
  res <- rma(d$yi, d$vi, method = spec$method, test = spec$test, level = spec$level,
             control = fit_control)
  pred <- predict(res)
  ci <- confint(res, control = ci_control)$random
  level_fits[[length(level_fits) + 1]] <- list(
    dataset = "bcg_logrr", method = spec$method, test = spec$test, level = spec$level / 100,
    call = sprintf(
      'rma(yi, vi, method="%s", test="%s", level=%d, control=list(tol=1e-12, threshold=1e-12, maxiter=10000)); confint(fit, control=list(tau2.max=1e4, tol=1e-12, maxiter=10000))',
      spec$method, spec$test, spec$level),
    ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
    pi_low = num(pred$pi.lb), pi_high = num(pred$pi.ub),
    tau2_ci = as.numeric(ci["tau^2", c("ci.lb", "ci.ub")]))
}

out <- list(
  description = paste(
    "metafor rma() intercept-only random-effects fits (all tau^2 estimators x tests z and knha)",
    "with tight convergence control, predict() prediction intervals and confint() Q-profile",
    "intervals for tau^2, tau, I^2 and H^2. Regenerate with validation/metafor/rma_reference.R."),
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  date = format(Sys.time(), "%Y-%m-%d", tz = "UTC"),
  fit_control = fit_control,
  ci_control = ci_control,
  methods = methods,
  tests = tests,
  datasets = lapply(datasets, function(d) list(yi = d$yi, vi = d$vi, source = d$source)),
  fits = fits,
  level_fits = level_fits
)

write_json(out, "tests/data/rma_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           na = "null")
cat("wrote", length(fits), "fits to tests/data/rma_reference.json\n")
