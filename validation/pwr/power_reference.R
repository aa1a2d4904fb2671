# Regenerates tests/data/power_reference.json: reference power and sample sizes from R's pwr and
# stats packages for fibrosim.trials (analytic and endpoints).
#
#   Rscript validation/pwr/power_reference.R        (run from the repository root)
#
# Every record carries the exact R call that produced its value.  pwr 1.3.0 solves for n with
# uniroot at its default tolerance (.Machine$double.eps^0.25, about 1.2e-4 on n), so its n values
# are stored as published but the high-precision n references come from stats::power.t.test
# with strict = TRUE (both tails) and tol = 1e-12.
suppressPackageStartupMessages({
  library(pwr)
  library(jsonlite)
})

records <- list()
add <- function(group, call, args, value) {
  records[[length(records) + 1]] <<- c(list(group = group, call = call, value = value), args)
}
run <- function(group, call, args) {
  add(group, call, args, eval(parse(text = call)))
}
num <- function(x) format(x, digits = 15)

# pwr.t.test: power of the two-sample, one-sample and paired t tests
for (type in c("two.sample", "one.sample", "paired"))
for (alt in c("two.sided", "greater"))
for (alpha in c(0.01, 0.05))
for (d in c(0.1, 0.2, 0.35, 0.5, 0.8, 1.2))
for (n in c(2, 3, 5, 10, 20, 50, 100, 500, 2000)) {
  call <- sprintf("pwr.t.test(n = %s, d = %s, sig.level = %s, type = '%s', alternative = '%s')$power",
                  num(n), num(d), num(alpha), type, alt)
  run("pwr.t.test power", call, list(type = type, alternative = alt, sig_level = alpha, d = d, n = n))
}

# pwr.t.test: n for a target power (uniroot at its default tolerance)
for (alt in c("two.sided", "greater"))
for (alpha in c(0.01, 0.05))
for (d in c(0.2, 0.5, 0.8, 1.2))
for (power in c(0.8, 0.9)) {
  call <- sprintf("pwr.t.test(d = %s, power = %s, sig.level = %s, type = 'two.sample', alternative = '%s')$n",
                  num(d), num(power), num(alpha), alt)
  run("pwr.t.test n", call, list(alternative = alt, sig_level = alpha, d = d, power = power))
}

# stats::power.t.test: n at tol = 1e-12, both tails counted (strict = TRUE)
for (type in c("two.sample", "one.sample", "paired"))
for (alt in c("two.sided", "one.sided"))
for (alpha in c(0.01, 0.05))
for (delta in c(0.2, 0.5, 0.8, 1.2))
for (power in c(0.8, 0.9)) {
  call <- sprintf(paste0("power.t.test(delta = %s, sd = 1, power = %s, sig.level = %s, type = '%s', ",
                         "alternative = '%s', strict = TRUE, tol = 1e-12)$n"),
                  num(delta), num(power), num(alpha), type, alt)
  run("power.t.test n", call, list(type = type, alternative = alt, sig_level = alpha, delta = delta,
                                   power = power))
}

# stats::power.t.test: power of paired / one-sample tests with a non-unit SD
for (type in c("one.sample", "paired"))
for (alt in c("two.sided", "one.sided"))
for (sd in c(0.7, 2.5))
for (delta in c(0.3, 1.0))
for (n in c(4, 15, 60)) {
  call <- sprintf(paste0("power.t.test(n = %s, delta = %s, sd = %s, sig.level = 0.05, type = '%s', ",
                         "alternative = '%s', strict = TRUE)$power"),
                  num(n), num(delta), num(sd), type, alt)
  run("power.t.test power", call, list(type = type, alternative = alt, sig_level = 0.05, sd = sd,
                                       delta = delta, n = n))
}

# pwr.t2n.test: unequal group sizes
for (alt in c("two.sided", "greater"))
for (d in c(0.3, 0.6, 1.0))
for (nn in list(c(5, 9), c(20, 10), c(30, 60), c(100, 250))) {
  call <- sprintf("pwr.t2n.test(n1 = %s, n2 = %s, d = %s, sig.level = 0.05, alternative = '%s')$power",
                  num(nn[1]), num(nn[2]), num(d), alt)
  run("pwr.t2n.test power", call, list(alternative = alt, sig_level = 0.05, d = d, n1 = nn[1],
                                       n2 = nn[2]))
}

# pwr.2p.test: two proportions by the arcsine transformation, h = ES.h(p1, p2)
for (alt in c("two.sided", "greater"))
for (pp in list(c(0.5, 0.3), c(0.4, 0.25), c(0.2, 0.1), c(0.65, 0.45)))
for (n in c(20, 50, 150, 400)) {
  call <- sprintf("pwr.2p.test(h = ES.h(%s, %s), n = %s, sig.level = 0.05, alternative = '%s')$power",
                  num(pp[1]), num(pp[2]), num(n), alt)
  run("pwr.2p.test power", call, list(alternative = alt, sig_level = 0.05, p1 = pp[1], p2 = pp[2],
                                      n = n))
}
for (pp in list(c(0.5, 0.3), c(0.4, 0.25), c(0.2, 0.1))) {
  call <- sprintf("pwr.2p.test(h = ES.h(%s, %s), power = 0.8, sig.level = 0.05)$n",
                  num(pp[1]), num(pp[2]))
  run("pwr.2p.test n", call, list(alternative = "two.sided", sig_level = 0.05, p1 = pp[1],
                                  p2 = pp[2], power = 0.8))
}

# stats::power.prop.test: normal approximation, pooled variance under H0, both tails
for (alt in c("two.sided", "one.sided"))
for (pp in list(c(0.5, 0.3), c(0.4, 0.25), c(0.2, 0.1)))
for (n in c(30, 100, 300)) {
  call <- sprintf(paste0("power.prop.test(n = %s, p1 = %s, p2 = %s, sig.level = 0.05, ",
                         "alternative = '%s', strict = TRUE)$power"),
                  num(n), num(pp[1]), num(pp[2]), alt)
  run("power.prop.test power", call, list(alternative = alt, sig_level = 0.05, p1 = pp[1],
                                          p2 = pp[2], n = n))
}

out <- list(
  provenance = list(
    script = "validation/pwr/power_reference.R",
    r_version = R.version.string,
    pwr_version = as.character(packageVersion("pwr")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    date = format(Sys.time(), "%Y-%m-%d", tz = "UTC"),
    note = paste("pwr 1.3.0 solves n by uniroot with tol = .Machine$double.eps^0.25;",
                 "power.t.test n uses tol = 1e-12 and strict = TRUE (both tails);",
                 "values are written with 15 significant digits by jsonlite.")
  ),
  records = records
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), pretty = TRUE),
           "tests/data/power_reference.json")
cat(sprintf("wrote %d records\n", length(records)))
