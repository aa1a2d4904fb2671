# Regenerates tests/data/rpact_design_reference.json: group-sequential designs from rpact for
# fibrosim.trials.sequential (one-sided with and without beta-spending futility, two-sided).
#
#   Rscript validation/rpact/design_reference.R        (run from the repository root)
#
# rpact comes from Debian (apt-get install r-cran-rpact).  Its integration is Newton-Cotes on
# 91 points per stage; its own unit tests check boundaries at tolerance 1e-7.  Every record
# carries the exact R call; numbers are printed with 15 significant digits.
suppressPackageStartupMessages({
  library(rpact)
  library(jsonlite)
})

num <- function(x) format(x, digits = 15)
vec <- function(x) paste0("c(", paste(num(x), collapse = ", "), ")")
records <- list()

add_design <- function(args, fibrosim) {
  call <- sprintf("getDesignGroupSequential(%s)", args)
  d <- eval(parse(text = call))
  rec <- list(
    call = call, fibrosim = fibrosim,
    criticalValues = as.numeric(d$criticalValues),
    alphaSpent = as.numeric(d$alphaSpent),
    stageLevels = as.numeric(d$stageLevels)
  )
  if (!is.na(d$beta) && grepl("beta", args)) {
    ch <- getDesignCharacteristics(d)
    rec$inflationFactor <- ch$inflationFactor
    rec$shift <- ch$shift
    rec$power <- as.numeric(ch$power)
    rec$averageSampleNumber1 <- ch$averageSampleNumber1
    rec$averageSampleNumber0 <- ch$averageSampleNumber0
    if (grepl("typeBetaSpending", args)) {
      rec$futilityBounds <- as.numeric(d$futilityBounds)
      rec$betaSpent <- as.numeric(d$betaSpent)
    }
  }
  records[[length(records) + 1]] <<- rec
}

kinds <- list(
  list(r = "typeOfDesign = 'OF'", f = list(kind = "obf")),
  list(r = "typeOfDesign = 'P'", f = list(kind = "pocock")),
  list(r = "typeOfDesign = 'WT', deltaWT = 0.25", f = list(kind = "wt", delta = 0.25)),
  list(r = "typeOfDesign = 'asOF'", f = list(kind = "ld-obf")),
  list(r = "typeOfDesign = 'asP'", f = list(kind = "ld-pocock")),
  list(r = "typeOfDesign = 'asKD', gammaA = 2", f = list(kind = "power", rho = 2)),
  list(r = "typeOfDesign = 'asHSD', gammaA = -4", f = list(kind = "hsd", gamma = -4))
)
for (sided in c(1, 2))
for (k in c(2, 3, 5))
for (kd in kinds) {
  alpha <- if (sided == 1) 0.025 else 0.05
  args <- sprintf("kMax = %d, alpha = %s, sided = %d, beta = 0.2, %s", k, num(alpha), sided, kd$r)
  add_design(args, c(list(k = k, alpha = alpha, sided = sided, beta = 0.2), kd$f))
}

# unequal looks
timing <- c(0.3, 0.55, 1)
for (sided in c(1, 2))
for (kd in kinds[4:7]) {
  alpha <- if (sided == 1) 0.025 else 0.05
  args <- sprintf("kMax = 3, alpha = %s, sided = %d, beta = 0.1, informationRates = %s, %s",
                  num(alpha), sided, vec(timing), kd$r)
  add_design(args, c(list(k = 3, alpha = alpha, sided = sided, beta = 0.1, timing = timing), kd$f))
}

# one-sided with beta-spending futility, non-binding and binding
fut <- list(
  list(r = "typeBetaSpending = 'bsKD', gammaB = 2", f = list("power", 2)),
  list(r = "typeBetaSpending = 'bsHSD', gammaB = -2", f = list("hsd", -2)),
  list(r = "typeBetaSpending = 'bsOF'", f = list("ld-obf", 0))
)
for (fb in fut)
for (binding in c(FALSE, TRUE)) {
  args <- sprintf("kMax = 3, alpha = 0.025, sided = 1, beta = 0.2, typeOfDesign = 'asOF', %s, bindingFutility = %s",
                  fb$r, if (binding) "TRUE" else "FALSE")
  add_design(args, list(k = 3, alpha = 0.025, sided = 1, beta = 0.2, kind = "ld-obf",
                        futility = fb$f, binding = binding))
}

out <- list(
  description = paste(
    "Group-sequential designs from rpact's getDesignGroupSequential and",
    "getDesignCharacteristics; 'fibrosim' gives the equivalent gs_bounds arguments",
    "(futility = [kind, parameter])."
  ),
  r_version = R.version.string,
  rpact_version = as.character(packageVersion("rpact")),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  designs = records
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, null = "null",
                  na = "null"), "tests/data/rpact_design_reference.json")
cat("wrote tests/data/rpact_design_reference.json with", length(records), "designs\n")
