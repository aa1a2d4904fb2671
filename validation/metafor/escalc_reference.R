# Regenerate tests/data/escalc_reference.json: effect sizes and sampling variances from
# metafor::escalc for every measure fibrosim.effects implements.
#
# Run from the repository root:
#     Rscript validation/metafor/escalc_reference.R
# Needs R with metafor and metadat (Debian: r-cran-metafor r-cran-metadat).
#
# Each case stores the exact escalc() call, the inputs under fibrosim's argument names, and
# yi / vi written with 17 significant digits so that doubles round-trip exactly.  Rows that
# escalc sets to NA (drop00 = TRUE) are written as null.

suppressPackageStartupMessages(library(metafor))

out_path <- file.path("tests", "data", "escalc_reference.json")

r_version <- R.version.string
metafor_version <- as.character(packageVersion("metafor"))
metadat_version <- as.character(packageVersion("metadat"))
run_date <- format(Sys.time(), "%Y-%m-%d", tz = "UTC")

# ---- a small JSON writer: jsonlite rounds doubles to 15 digits, which does not round-trip ----
scalar <- function(x) structure(x, class = c("json_scalar", class(x)))

num_str <- function(x) {
  ifelse(is.na(x), "null", sprintf("%.17g", x))
}

to_json <- function(x, indent = 0) {
  pad <- strrep(" ", indent + 2)
  end <- strrep(" ", indent)
  if (inherits(x, "json_scalar")) {
    x <- unclass(x)
    if (is.character(x)) return(sprintf("\"%s\"", gsub("\"", "\\\\\"", x)))
    if (is.logical(x)) return(if (x) "true" else "false")
    return(num_str(x))
  }
  if (is.list(x)) {
    if (length(x) == 0 && !is.null(names(x))) return("{}")
    if (!is.null(names(x))) {
      items <- vapply(names(x), function(k) {
        sprintf("%s\"%s\": %s", pad, k, to_json(x[[k]], indent + 2))
      }, character(1))
      return(paste0("{\n", paste(items, collapse = ",\n"), "\n", end, "}"))
    }
    items <- vapply(x, function(v) paste0(pad, to_json(v, indent + 2)), character(1))
    return(paste0("[\n", paste(items, collapse = ",\n"), "\n", end, "]"))
  }
  if (is.character(x)) {
    return(paste0("[", paste(sprintf("\"%s\"", x), collapse = ", "), "]"))
  }
  if (is.logical(x)) {
    return(paste0("[", paste(ifelse(x, "true", "false"), collapse = ", "), "]"))
  }
  paste0("[", paste(num_str(as.numeric(x)), collapse = ", "), "]")
}

# ---- cases ----
cases <- list()

# `call` is evaluated in `env`; `args` are fibrosim's argument names -> values; `kwargs` are
# fibrosim keyword options (scalars).
add_case <- function(name, func, call, args, kwargs = list(), env = globalenv(), note = NULL) {
  res <- eval(parse(text = call), envir = env)
  case <- list(
    name = scalar(name),
    `function` = scalar(func),
    r_call = scalar(call),
    args = args,
    kwargs = structure(lapply(kwargs, scalar), names = as.character(names(kwargs))),
    yi = as.numeric(res$yi),
    vi = as.numeric(res$vi),
    r_version = scalar(r_version),
    metafor_version = scalar(metafor_version),
    date = scalar(run_date)
  )
  if (!is.null(note)) case$note <- scalar(note)
  cases[[length(cases) + 1]] <<- case
}

# Normand (1999): length of hospital stay, stroke units vs. general care (metadat).
dn <- dat.normand1999
means_args <- list(
  m1 = dn$m1i, sd1 = dn$sd1i, n1 = dn$n1i,
  m2 = dn$m2i, sd2 = dn$sd2i, n2 = dn$n2i
)
add_case("normand1999_smd_ls", "smd",
  'escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999, vtype="LS")',
  means_args, list(vtype = "LS"))
add_case("normand1999_smd_ub", "smd",
  'escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999, vtype="UB")',
  means_args, list(vtype = "UB"))
add_case("normand1999_smd_ls2", "smd",
  'escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999, vtype="LS2")',
  means_args, list(vtype = "LS2"))
add_case("normand1999_md_ls", "md",
  'escalc(measure="MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)',
  means_args, list(vtype = "LS"))
add_case("normand1999_md_ho", "md",
  'escalc(measure="MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999, vtype="HO")',
  means_args, list(vtype = "HO"))
add_case("normand1999_rom", "rom",
  'escalc(measure="ROM", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)',
  means_args)

# Edge rows for two-group means: n = 2 per arm (m = 2, the smallest df with a defined J),
# an SD of 1e-8, unequal and large arms, a zero mean difference, a negative difference.
edge_means <- data.frame(
  m1i = c(10, 5.5, 3, 100, 7, 0.2),
  sd1i = c(2, 1e-8, 1, 15, 3, 0.05),
  n1i = c(2, 10, 3, 5000, 40, 12),
  m2i = c(8, 5.4, 4, 101.5, 7, 0.35),
  sd2i = c(3, 1e-8, 1.5, 14, 2, 0.07),
  n2i = c(2, 10, 2, 4000, 41, 9)
)
edge_means_args <- list(
  m1 = edge_means$m1i, sd1 = edge_means$sd1i, n1 = edge_means$n1i,
  m2 = edge_means$m2i, sd2 = edge_means$sd2i, n2 = edge_means$n2i
)
for (vt in c("LS", "UB", "LS2")) {
  add_case(paste0("edge_means_smd_", tolower(vt)), "smd",
    sprintf('escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=edge_means, vtype="%s")', vt),
    edge_means_args, list(vtype = vt))
}
for (vt in c("LS", "HO")) {
  add_case(paste0("edge_means_md_", tolower(vt)), "md",
    sprintf('escalc(measure="MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=edge_means, vtype="%s")', vt),
    edge_means_args, list(vtype = vt))
}
add_case("edge_means_rom", "rom",
  'escalc(measure="ROM", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=edge_means)',
  edge_means_args)

# Morris (2008) pre-post data as typed in metafor's analysis example
# (metafor-project.org, analyses:morris2008; Carlson & Schmidt 1999 training studies).
# m1i = post-test mean, m2i = pre-test mean, sd1i = pre-test SD.
datT <- data.frame(
  m_pre = c(30.6, 23.5, 0.5, 53.4, 35.6),
  m_post = c(38.5, 26.8, 0.7, 75.9, 36.0),
  sd_pre = c(15.0, 3.1, 0.1, 14.5, 4.7),
  sd_post = c(11.6, 4.1, 0.1, 4.4, 4.6),
  ni = c(20, 50, 9, 10, 14),
  ri = c(0.47, 0.64, 0.77, 0.89, 0.44)
)
datC <- data.frame(
  m_pre = c(23.1, 24.9, 0.6, 55.7, 34.8),
  m_post = c(19.7, 25.3, 0.6, 60.7, 33.4),
  sd_pre = c(13.8, 4.1, 0.2, 17.3, 3.1),
  sd_post = c(14.8, 3.3, 0.2, 17.9, 6.9),
  ni = c(20, 42, 9, 11, 14),
  ri = c(0.47, 0.64, 0.77, 0.89, 0.44)
)
for (grp in c("T", "C")) {
  d <- if (grp == "T") datT else datC
  dname <- paste0("dat", grp)
  smcr_args <- list(m1 = d$m_post, m2 = d$m_pre, sd1 = d$sd_pre, n = d$ni, r = d$ri)
  smcc_args <- list(m1 = d$m_post, m2 = d$m_pre, sd1 = d$sd_pre, sd2 = d$sd_post, n = d$ni, r = d$ri)
  for (vt in c("LS", "LS2")) {
    add_case(sprintf("morris2008_%s_smcr_%s", tolower(grp), tolower(vt)), "smcr",
      sprintf('escalc(measure="SMCR", m1i=m_post, m2i=m_pre, sd1i=sd_pre, ni=ni, ri=ri, data=%s, vtype="%s")', dname, vt),
      smcr_args, list(vtype = vt))
    add_case(sprintf("morris2008_%s_smcc_%s", tolower(grp), tolower(vt)), "smcc",
      sprintf('escalc(measure="SMCC", m1i=m_post, m2i=m_pre, sd1i=sd_pre, sd2i=sd_post, ni=ni, ri=ri, data=%s, vtype="%s")', dname, vt),
      smcc_args, list(vtype = vt))
  }
}

# Pre-post edge rows: n = 3 (the smallest n with a defined J(n - 1)), r = 1, r = -1, r = 0,
# an SD of 1e-8, no change.
edge_pp <- data.frame(
  m1i = c(12, 5, 2.5, 40, 1.00000002, 7),
  m2i = c(10, 6, 2.0, 38, 1, 7),
  sd1i = c(3, 2, 0.5, 10, 1e-8, 1),
  sd2i = c(4, 2.5, 0.5, 12, 1e-8, 1.2),
  ni = c(3, 25, 8, 300, 15, 30),
  ri = c(0.5, 1, -1, 0, 0.3, 0.9)
)
add_case("edge_prepost_smcr", "smcr",
  'escalc(measure="SMCR", m1i=m1i, m2i=m2i, sd1i=sd1i, ni=ni, ri=ri, data=edge_pp)',
  list(m1 = edge_pp$m1i, m2 = edge_pp$m2i, sd1 = edge_pp$sd1i, n = edge_pp$ni, r = edge_pp$ri))
edge_pp_c <- edge_pp[-2, ] # r = 1 with sd1 != sd2 is fine, but keep SMCC rows with a positive change SD
add_case("edge_prepost_smcc", "smcc",
  'escalc(measure="SMCC", m1i=m1i, m2i=m2i, sd1i=sd1i, sd2i=sd2i, ni=ni, ri=ri, data=edge_pp_c)',
  list(m1 = edge_pp_c$m1i, m2 = edge_pp_c$m2i, sd1 = edge_pp_c$sd1i, sd2 = edge_pp_c$sd2i,
       n = edge_pp_c$ni, r = edge_pp_c$ri))

# Molloy et al. (2014): conscientiousness and medication adherence (metadat).
dm <- dat.molloy2014
add_case("molloy2014_zcor", "zcor",
  'escalc(measure="ZCOR", ri=ri, ni=ni, data=dat.molloy2014)',
  list(r = dm$ri, n = dm$ni))
edge_cor <- data.frame(ri = c(0.999, -0.999, 0, 1e-6, -0.5), ni = c(4, 5, 10, 100000, 7))
add_case("edge_zcor", "zcor",
  'escalc(measure="ZCOR", ri=ri, ni=ni, data=edge_cor)',
  list(r = edge_cor$ri, n = edge_cor$ni))

# BCG vaccine trials (metadat): 2x2 tables, a = tpos, b = tneg, c = cpos, d = cneg.
db <- dat.bcg
bcg_args <- list(a = db$tpos, b = db$tneg, c = db$cpos, d = db$cneg)
for (m in c("OR", "RR", "RD")) {
  func <- c(OR = "odds_ratio", RR = "risk_ratio", RD = "risk_difference")[[m]]
  add_case(sprintf("bcg_%s_default", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)', m),
    bcg_args)
  add_case(sprintf("bcg_%s_to_all", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, add=1/2, to="all")', m),
    bcg_args, list(add = 0.5, to = "all"))
  add_case(sprintf("bcg_%s_drop00", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, drop00=TRUE)', m),
    bcg_args, list(drop00 = TRUE))
}
add_case("bcg_rd_ub", "risk_difference",
  'escalc(measure="RD", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, vtype="UB")',
  bcg_args, list(vtype = "UB"))

# Edge 2x2 tables: a zero in each cell position, double zero with equal and unequal arms,
# all events in both arms, a 1/1/1/1 table, and tables without zeros.
edge_bin <- data.frame(
  ai = c(0, 4, 6, 3, 0, 0, 10, 1, 12, 2),
  bi = c(10, 0, 14, 7, 20, 15, 0, 1, 38, 48),
  ci = c(3, 5, 0, 2, 0, 0, 8, 1, 20, 9),
  di = c(7, 5, 10, 0, 20, 25, 0, 1, 30, 41)
)
edge_bin_args <- list(a = edge_bin$ai, b = edge_bin$bi, c = edge_bin$ci, d = edge_bin$di)
# the tables without a zero cell
nz <- edge_bin[9:10, ]
for (m in c("OR", "RR", "RD")) {
  func <- c(OR = "odds_ratio", RR = "risk_ratio", RD = "risk_difference")[[m]]
  add_case(sprintf("edge_binary_%s_default", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=edge_bin)', m),
    edge_bin_args)
  add_case(sprintf("edge_binary_%s_to_all", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=edge_bin, to="all")', m),
    edge_bin_args, list(to = "all"))
  add_case(sprintf("edge_binary_%s_if0all", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=edge_bin, to="if0all")', m),
    edge_bin_args, list(to = "if0all"))
  add_case(sprintf("edge_binary_%s_drop00", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=edge_bin, drop00=TRUE)', m),
    edge_bin_args, list(drop00 = TRUE))
  add_case(sprintf("edge_binary_%s_add_0.25", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=edge_bin, add=0.25)', m),
    edge_bin_args, list(add = 0.25))
  add_case(sprintf("edge_binary_%s_if0all_nozero", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=nz, to="if0all")', m),
    list(a = nz$ai, b = nz$bi, c = nz$ci, d = nz$di), list(to = "if0all"))
  add_case(sprintf("edge_binary_%s_none_nozero", tolower(m)), func,
    sprintf('escalc(measure="%s", ai=ai, bi=bi, ci=ci, di=di, data=nz, to="none")', m),
    list(a = nz$ai, b = nz$bi, c = nz$ci, d = nz$di), list(to = "none"))
}
# RR with zeros only in the non-event cells is defined without a correction
bd0 <- edge_bin[c(2, 4, 9), ]
add_case("edge_binary_rr_none_bd_zero", "risk_ratio",
  'escalc(measure="RR", ai=ai, bi=bi, ci=ci, di=di, data=bd0, to="none")',
  list(a = bd0$ai, b = bd0$bi, c = bd0$ci, d = bd0$di), list(to = "none"),
  note = "rows 2, 4 and 9 of edge_bin: zeros only in b or d")

# Hedges' g from a t statistic: escalc's SMD with ti = t (d = t * sqrt(1/n1 + 1/n2)).
tstat <- data.frame(ti = c(2.5, -1.2, 0, 4.75, 0.3), n1i = c(20, 15, 30, 8, 200), n2i = c(22, 15, 28, 9, 190))
add_case("t_to_smd", "d_from_t",
  'escalc(measure="SMD", ti=ti, n1i=n1i, n2i=n2i, data=tstat)',
  list(t = tstat$ti, n1 = tstat$n1i, n2 = tstat$n2i))
add_case("t_to_smd_ub", "d_from_t",
  'escalc(measure="SMD", ti=ti, n1i=n1i, n2i=n2i, data=tstat, vtype="UB")',
  list(t = tstat$ti, n1 = tstat$n1i, n2 = tstat$n2i), list(vtype = "UB"))

# From an F statistic with 1 numerator df: t = sign * sqrt(F).
fstat <- data.frame(fi = c(6.25, 1.44, 22.5625, 0.09), sign = c(1, -1, 1, -1),
                    n1i = c(20, 15, 8, 200), n2i = c(22, 15, 9, 190))
add_case("f_to_smd", "d_from_f",
  'escalc(measure="SMD", ti=sign*sqrt(fi), n1i=n1i, n2i=n2i, data=fstat)',
  list(f = fstat$fi, n1 = fstat$n1i, n2 = fstat$n2i, sign = fstat$sign))

# From a two-sided p value: t = sign * qt(p/2, n1 + n2 - 2, lower.tail = FALSE).
pval <- data.frame(pi = c(0.03, 0.5, 1e-6, 0.2, 1), sign = c(-1, 1, 1, -1, 1),
                   n1i = c(20, 15, 30, 8, 50), n2i = c(22, 15, 28, 9, 45))
add_case("p_to_smd", "d_from_p",
  'escalc(measure="SMD", ti=sign*qt(pi/2, df=n1i+n2i-2, lower.tail=FALSE), n1i=n1i, n2i=n2i, data=pval)',
  list(p = pval$pi, n1 = pval$n1i, n2 = pval$n2i, sign = pval$sign))

doc <- list(
  description = scalar(paste(
    "Reference effect sizes from metafor::escalc for fibrosim.effects.",
    "Regenerate with: Rscript validation/metafor/escalc_reference.R"
  )),
  r_version = scalar(r_version),
  metafor_version = scalar(metafor_version),
  metadat_version = scalar(metadat_version),
  date = scalar(run_date),
  cases = cases
)
writeLines(to_json(doc), out_path)
cat(sprintf("wrote %d cases to %s\n", length(cases), out_path))
