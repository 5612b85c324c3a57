# Shared helper for the lme4 bench / reference scripts.
#
# read_typed(csv_path, types_path, dataset)
#   Reads a CSV written from an R data set and restores the column types
#   recorded in types.json: factors and ordered factors get exactly the level
#   order stored there (level order matters for contrasts and for the order of
#   the random effects), integers and numerics are coerced.
#
# dataset defaults to the CSV file name without extension (e.g. "sleepstudy").

suppressPackageStartupMessages(library(jsonlite))

read_typed <- function(csv_path, types_path,
                       dataset = sub("\\.csv$", "", basename(csv_path))) {
  types <- jsonlite::fromJSON(types_path, simplifyVector = TRUE)
  if (is.null(types[[dataset]]))
    stop(sprintf("data set '%s' not found in %s", dataset, types_path))
  spec <- types[[dataset]]
  # read everything as character first so that e.g. factor level "01" or
  # numeric-looking levels are not mangled
  df <- utils::read.csv(csv_path, colClasses = "character",
                        check.names = FALSE, stringsAsFactors = FALSE,
                        na.strings = "NA")
  for (col in names(spec)) {
    if (!col %in% names(df))
      stop(sprintf("column '%s' missing from %s", col, csv_path))
    s <- spec[[col]]
    x <- df[[col]]
    df[[col]] <- switch(s$type,
      factor  = {
        f <- factor(x, levels = s$levels)
        if (any(is.na(f) & !is.na(x)))
          stop(sprintf("column '%s' has values outside its levels", col))
        f
      },
      ordered = {
        f <- factor(x, levels = s$levels, ordered = TRUE)
        if (any(is.na(f) & !is.na(x)))
          stop(sprintf("column '%s' has values outside its levels", col))
        f
      },
      integer = as.integer(x),
      numeric = as.numeric(x),
      stop(sprintf("unknown type '%s' for column '%s'", s$type, col)))
  }
  df
}

# directory of the running Rscript (to source siblings)
script_dir <- function() {
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 0) return(getwd())
  dirname(normalizePath(f[1]))
}
