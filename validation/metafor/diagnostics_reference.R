# Regenerate tests/data/diagnostics_reference.json: metafor reference values for
# fibrosim.meta.regression (meta_regression, subgroup_analysis) and fibrosim.meta.diagnostics
# (leave_one_out, influence, blup, egger_test, trim_and_fill, rank_test).
#
# Run from the repository root:  Rscript validation/metafor/diagnostics_reference.R
# Needs R >= 4.2 with metafor 3.8-1 and metadat (Debian: r-cran-metafor r-cran-metadat).
#
# Every iterative fit uses tight control (Fisher scoring threshold and uniroot tolerance 1e-12),
# so the stored numbers are metafor's converged values, not its default stopping points.
# Numbers are written with 17 significant digits (round-trip exact doubles).

suppressPackageStartupMessages(library(metafor))

ctrl <- list(tol = 1e-12, threshold = 1e-12, maxiter = 10000)
ctrl_txt <- "control=list(tol=1e-12, threshold=1e-12, maxiter=10000)"

# --------------------------------------------------------------------------------------------
# a minimal JSON writer with round-trip precision (jsonlite stops at 15 significant digits)
# --------------------------------------------------------------------------------------------
num <- function(x) {
  ifelse(is.na(x), "null", ifelse(is.infinite(x), ifelse(x > 0, "1e999", "-1e999"),
                                  sprintf("%.17g", x)))
}
to_json <- function(x, indent = 0) {
  pad <- strrep(" ", indent + 2)
  end <- strrep(" ", indent)
  if (is.null(x)) return("null")
  if (is.list(x)) {
    if (!is.null(names(x))) {
      items <- vapply(names(x), function(n) paste0(pad, '"', n, '": ', to_json(x[[n]], indent + 2)),
                      character(1))
      return(paste0("{\n", paste(items, collapse = ",\n"), "\n", end, "}"))
    }
    items <- vapply(x, function(v) paste0(pad, to_json(v, indent + 2)), character(1))
    return(paste0("[\n", paste(items, collapse = ",\n"), "\n", end, "]"))
  }
  scalar <- length(x) == 1 && !inherits(x, "AsIs")
  if (is.character(x) || is.factor(x)) {
    vals <- paste0('"', gsub('"', '\\\\"', as.character(x)), '"')
  } else if (is.logical(x)) {
    vals <- ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else {
    vals <- num(as.numeric(x))
  }
  if (scalar) return(vals)
  paste0("[", paste(vals, collapse = ", "), "]")
}
arr <- function(x) if (is.null(x)) NULL else I(as.vector(x))  # always a JSON array (NULL -> null)

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
raud <- dat.raudenbush1985
egger <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                data = dat.egger2001, subset = -16)  # minus ISIS-4, as in Egger et al. (2001)
toy <- data.frame(yi = c(3, 2, 5, 4, 6), vi = rep(1, 5))

datasets <- list(
  bcg = list(yi = arr(bcg$yi), vi = arr(bcg$vi), ablat = arr(bcg$ablat), year = arr(bcg$year),
             alloc = arr(as.character(bcg$alloc)),
             source = 'escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)'),
  raudenbush1985 = list(yi = arr(raud$yi), vi = arr(raud$vi), weeks = arr(raud$weeks),
                        source = "dat.raudenbush1985 (yi, vi as shipped in metadat)"),
  egger2001 = list(yi = arr(egger$yi), vi = arr(egger$vi),
                   source = 'escalc(measure="OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.egger2001, subset=-16)'),
  toy = list(yi = arr(toy$yi), vi = arr(toy$vi), source = "yi = c(3, 2, 5, 4, 6), vi = 1")
)

# --------------------------------------------------------------------------------------------
# meta-regression grid
# --------------------------------------------------------------------------------------------
model_out <- function(res) {
  list(
    coef_names = arr(rownames(res$beta)),
    beta = arr(res$beta), se = arr(res$se), zval = arr(res$zval), pval = arr(res$pval),
    ci_lb = arr(res$ci.lb), ci_ub = arr(res$ci.ub),
    tau2 = res$tau2, se_tau2 = res$se.tau2, i2 = res$I2, h2 = res$H2,
    r2 = if (is.null(res$R2)) NA else res$R2,
    qm = res$QM, qm_df = arr(res$QMdf), qm_pval = res$QMp,
    qe = res$QE, qe_pval = res$QEp, k = res$k, p = res$p
  )
}

fits <- list(
  list(name = "bcg_ablat", data = bcg, mods = ~ablat, mods_txt = "~ ablat"),
  list(name = "bcg_ablat_year", data = bcg, mods = ~ ablat + year, mods_txt = "~ ablat + year"),
  list(name = "bcg_alloc", data = bcg, mods = ~ factor(alloc), mods_txt = "~ factor(alloc)"),
  list(name = "raudenbush1985_weeks", data = raud, mods = ~weeks, mods_txt = "~ weeks")
)
methods <- c("FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
tests <- c("z", "knha")

metareg <- list()
for (f in fits) {
  dname <- sub("_[^_]*$", "", f$name)
  if (f$name == "bcg_ablat_year") dname <- "bcg"
  for (m in methods) {
    for (tst in tests) {
      call_txt <- sprintf("rma(yi, vi, mods = %s, data = %s, method = \"%s\", test = \"%s\", %s)",
                          f$mods_txt, dname, m, tst, ctrl_txt)
      res <- suppressWarnings(rma(yi, vi, mods = f$mods, data = f$data, method = m, test = tst,
                                  control = ctrl))
      out <- c(list(id = paste(f$name, m, tst, sep = "/"), dataset = dname, model = f$name,
                    method = m, test = tst, call = call_txt), model_out(res))
      metareg[[length(metareg) + 1]] <- out
    }
  }
}

# exact permutation test (k = 6, so all orderings are enumerated by metafor)
bcg6 <- bcg[1:6, ]
permutest_ref <- list()
for (tst in tests) {
  res6 <- rma(yi, vi, mods = ~ablat, data = bcg6, method = "REML", test = tst, control = ctrl)
  set.seed(1)
  pt <- permutest(res6, exact = TRUE, progbar = FALSE)
  permutest_ref[[length(permutest_ref) + 1]] <- list(
    id = paste("bcg1to6_ablat/REML", tst, sep = "/"),
    call = sprintf(paste0("permutest(rma(yi, vi, mods = ~ ablat, data = bcg[1:6, ], method = \"REML\", ",
                          "test = \"%s\", %s), exact = TRUE)"), tst, ctrl_txt),
    rows = arr(1:6), pval = arr(pt$pval), qm_pval = pt$QMp, qm = res6$QM,
    n_permutations = nrow(pt$zval.perm)
  )
}

# --------------------------------------------------------------------------------------------
# subgroups (dat.bcg by alloc)
# --------------------------------------------------------------------------------------------
subgroup <- list()
for (m in c("REML", "DL")) {
  for (tst in tests) {
    levs <- sort(unique(as.character(bcg$alloc)))
    per <- lapply(levs, function(g) {
      rma(yi, vi, data = bcg, subset = alloc == g, method = m, test = tst, control = ctrl)
    })
    est <- sapply(per, function(r) c(r$beta))
    se <- sapply(per, function(r) r$se)
    between <- rma(est, sei = se, method = "FE")
    common <- rma(yi, vi, mods = ~ factor(alloc), data = bcg, method = m, test = tst,
                  control = ctrl)
    common0 <- rma(yi, vi, mods = ~ factor(alloc) - 1, data = bcg, method = m, test = tst,
                   control = ctrl)
    subgroup[[length(subgroup) + 1]] <- list(
      id = paste("bcg_alloc", m, tst, sep = "/"), method = m, test = tst,
      calls = list(
        separate = sprintf(paste0("for g in levels: rma(yi, vi, data = bcg, subset = alloc == g, ",
                                  "method = \"%s\", test = \"%s\", %s); then ",
                                  "rma(estimate, sei = se, method = \"FE\")$QE"), m, tst, ctrl_txt),
        common = sprintf(paste0("rma(yi, vi, mods = ~ factor(alloc), data = bcg, method = \"%s\", ",
                                "test = \"%s\", %s)$QM; group means from mods = ~ factor(alloc) - 1"),
                         m, tst, ctrl_txt)
      ),
      groups = arr(levs),
      separate = list(
        k = arr(sapply(per, function(r) r$k)), estimate = arr(est), se = arr(se),
        ci_lb = arr(sapply(per, function(r) r$ci.lb)), ci_ub = arr(sapply(per, function(r) r$ci.ub)),
        tau2 = arr(sapply(per, function(r) r$tau2)), q = arr(sapply(per, function(r) r$QE)),
        q_between = between$QE, q_between_df = length(levs) - 1, q_between_pval = between$QEp
      ),
      common = list(
        estimate = arr(common0$beta), se = arr(common0$se), ci_lb = arr(common0$ci.lb),
        ci_ub = arr(common0$ci.ub), tau2 = common$tau2,
        q_between = common$QM, q_between_df = arr(common$QMdf), q_between_pval = common$QMp
      )
    )
  }
}

# --------------------------------------------------------------------------------------------
# leave-one-out, influence, BLUPs
# --------------------------------------------------------------------------------------------
diag_cases <- list(
  list(name = "bcg/REML/z", data = bcg, dname = "bcg", method = "REML", test = "z"),
  list(name = "bcg/REML/knha", data = bcg, dname = "bcg", method = "REML", test = "knha"),
  list(name = "bcg/DL/z", data = bcg, dname = "bcg", method = "DL", test = "z"),
  list(name = "bcg/ML/z", data = bcg, dname = "bcg", method = "ML", test = "z"),
  list(name = "bcg/EE/z", data = bcg, dname = "bcg", method = "EE", test = "z"),
  list(name = "raudenbush1985/REML/z", data = raud, dname = "raudenbush1985", method = "REML",
       test = "z"),
  list(name = "toy/REML/z", data = toy, dname = "toy", method = "REML", test = "z"),
  list(name = "bcg_ablat/REML/z", data = bcg, dname = "bcg", method = "REML", test = "z",
       mods = ~ablat, mods_txt = "~ ablat"),
  list(name = "bcg_ablat/REML/knha", data = bcg, dname = "bcg", method = "REML", test = "knha",
       mods = ~ablat, mods_txt = "~ ablat"),
  list(name = "raudenbush1985_weeks/DL/z", data = raud, dname = "raudenbush1985", method = "DL",
       test = "z", mods = ~weeks, mods_txt = "~ weeks")
)
leave1out_ref <- list()
influence_ref <- list()
blup_ref <- list()
for (d in diag_cases) {
  if (is.null(d$mods)) {
    res <- rma(yi, vi, data = d$data, method = d$method, test = d$test, control = ctrl)
    fit_txt <- sprintf("res <- rma(yi, vi, data = %s, method = \"%s\", test = \"%s\", %s)",
                       d$dname, d$method, d$test, ctrl_txt)
  } else {
    res <- rma(yi, vi, mods = d$mods, data = d$data, method = d$method, test = d$test,
               control = ctrl)
    fit_txt <- sprintf(
      "res <- rma(yi, vi, mods = %s, data = %s, method = \"%s\", test = \"%s\", %s)",
      d$mods_txt, d$dname, d$method, d$test, ctrl_txt)
  }
  moderator <- if (is.null(d$mods)) NA else all.vars(d$mods)
  if (is.null(d$mods)) {
  l1 <- leave1out(res)
  leave1out_ref[[length(leave1out_ref) + 1]] <- list(
    id = d$name, dataset = d$dname, method = d$method, test = d$test,
    call = paste0(fit_txt, "; leave1out(res)"),
    estimate = arr(l1$estimate), se = arr(l1$se), stat = arr(if (is.null(l1$zval)) l1$tval else l1$zval), pval = arr(l1$pval),
    ci_lb = arr(l1$ci.lb), ci_ub = arr(l1$ci.ub), q = arr(l1$Q), q_pval = arr(l1$Qp),
    tau2 = arr(l1$tau2), i2 = arr(l1$I2), h2 = arr(l1$H2)
  )
  }
  if (d$method != "EE") {
    inf <- influence(res)
    influence_ref[[length(influence_ref) + 1]] <- list(
      id = d$name, dataset = d$dname, method = d$method, test = d$test, moderator = moderator,
      call = paste0(fit_txt, "; influence(res)"),
      rstudent = arr(inf$inf$rstudent), dffits = arr(inf$inf$dffits),
      cook_d = arr(inf$inf$cook.d), cov_r = arr(inf$inf$cov.r),
      tau2_del = arr(inf$inf$tau2.del), qe_del = arr(inf$inf$QE.del),
      hat = arr(inf$inf$hat), weight = arr(inf$inf$weight),
      is_infl = arr(inf$is.infl),
      dfbetas = unname(lapply(unclass(inf$dfbs)[seq_len(res$p)], arr))  # one array per coefficient
    )
    b <- blup(res)
    blup_ref[[length(blup_ref) + 1]] <- list(
      id = d$name, dataset = d$dname, method = d$method, test = d$test, moderator = moderator,
      call = paste0(fit_txt, "; blup(res)"),
      pred = arr(b$pred), se = arr(b$se), pi_lb = arr(b$pi.lb), pi_ub = arr(b$pi.ub)
    )
  }
}

# --------------------------------------------------------------------------------------------
# publication bias: regtest, trimfill, ranktest
# --------------------------------------------------------------------------------------------
pb_data <- list(bcg = bcg, egger2001 = egger, raudenbush1985 = raud)
regtest_ref <- list()
for (dn in names(pb_data)) {
  for (model in c("rma", "lm")) {
    for (pred in c("sei", "vi")) {
      for (m in c("REML", "DL")) {
        if (model == "lm" && m != "REML") next
        res <- rma(yi, vi, data = pb_data[[dn]], method = m, control = ctrl)
        rt <- regtest(res, model = model, predictor = pred)
        regtest_ref[[length(regtest_ref) + 1]] <- list(
          id = paste(dn, model, pred, m, sep = "/"), dataset = dn, model = model, predictor = pred,
          method = m,
          call = sprintf("regtest(rma(yi, vi, data = %s, method = \"%s\", %s), model = \"%s\", predictor = \"%s\")",
                         dn, m, ctrl_txt, model, pred),
          stat = rt$zval, pval = rt$pval, df = rt$dfs,
          limit = if (is.null(rt$est)) NA else rt$est,
          limit_ci_lb = if (is.null(rt$ci.lb)) NA else rt$ci.lb,
          limit_ci_ub = if (is.null(rt$ci.ub)) NA else rt$ci.ub,
          slope = unname(coef(rt$fit)[2])
        )
      }
    }
  }
}

trimfill_ref <- list()
tf_cases <- list(
  list(dn = "bcg", m = "EE", est = "L0"), list(dn = "bcg", m = "EE", est = "R0"),
  list(dn = "bcg", m = "REML", est = "L0"), list(dn = "bcg", m = "REML", est = "R0"),
  list(dn = "bcg", m = "DL", est = "L0"),
  list(dn = "egger2001", m = "REML", est = "L0"), list(dn = "egger2001", m = "EE", est = "R0"),
  list(dn = "raudenbush1985", m = "REML", est = "L0"),
  list(dn = "raudenbush1985", m = "REML", est = "L0", side = "left"),
  list(dn = "bcg", m = "EE", est = "Q0"), list(dn = "bcg", m = "REML", est = "Q0"),
  list(dn = "raudenbush1985", m = "EE", est = "Q0"), list(dn = "raudenbush1985", m = "REML", est = "Q0")
)
for (tc in tf_cases) {
  res <- rma(yi, vi, data = pb_data[[tc$dn]], method = tc$m, control = ctrl)
  side_txt <- ""
  if (is.null(tc$side)) {
    tf <- trimfill(res, estimator = tc$est, control = ctrl)
  } else {
    tf <- trimfill(res, estimator = tc$est, side = tc$side, control = ctrl)
    side_txt <- sprintf(", side = \"%s\"", tc$side)
  }
  trimfill_ref[[length(trimfill_ref) + 1]] <- list(
    id = paste(tc$dn, tc$m, tc$est, if (is.null(tc$side)) "auto" else tc$side, sep = "/"),
    dataset = tc$dn, method = tc$m, estimator = tc$est,
    side_given = if (is.null(tc$side)) NA else tc$side,
    call = sprintf("trimfill(rma(yi, vi, data = %s, method = \"%s\", %s), estimator = \"%s\"%s, %s)",
                   tc$dn, tc$m, ctrl_txt, tc$est, side_txt, ctrl_txt),
    k0 = tf$k0, se_k0 = tf$se.k0, side = tf$side, p_k0 = tf$p.k0,
    estimate = c(tf$beta), se = tf$se, ci_lb = tf$ci.lb, ci_ub = tf$ci.ub, tau2 = tf$tau2,
    yi_filled = arr(tf$yi), vi_filled = arr(tf$vi), fill = arr(tf$fill)
  )
}

ranktest_ref <- list()
for (dn in names(pb_data)) {
  # with ties R's cor.test warns and uses the normal approximation (recorded as exact = FALSE)
  rk <- suppressWarnings(ranktest(pb_data[[dn]]$yi, pb_data[[dn]]$vi))
  x <- pb_data[[dn]]
  ystar <- (x$yi - weighted.mean(x$yi, 1 / x$vi)) / sqrt(x$vi - 1 / sum(1 / x$vi))
  exact <- min(length(unique(ystar)), length(unique(x$vi))) == length(x$yi)
  ranktest_ref[[length(ranktest_ref) + 1]] <- list(
    id = dn, dataset = dn, call = sprintf("ranktest(yi, vi, data = %s)", dn),
    tau = unname(rk$tau), pval = rk$pval, exact = exact
  )
}

# --------------------------------------------------------------------------------------------
out <- list(
  provenance = list(
    script = "validation/metafor/diagnostics_reference.R",
    r_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
    control = ctrl_txt,
    note = paste("metafor fits with the control above; every number printed with 17 significant",
                 "digits. Fisher scoring stops when |change in tau2| < 1e-12.")
  ),
  datasets = datasets,
  meta_regression = metareg,
  permutest = permutest_ref,
  subgroup = subgroup,
  leave1out = leave1out_ref,
  influence = influence_ref,
  blup = blup_ref,
  regtest = regtest_ref,
  trimfill = trimfill_ref,
  ranktest = ranktest_ref
)
writeLines(to_json(out), "tests/data/diagnostics_reference.json")
cat("wrote tests/data/diagnostics_reference.json\n")
