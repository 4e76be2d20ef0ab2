/* Reading examples/data/digits.csv for the C examples: 64 pixel values
 * (0..16) and the digit, per line, as raw features (the library scales them
 * as the model's train block says). */
#ifndef DIGITS_DATA_H
#define DIGITS_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads up to `max` rows of `path` into x (64 floats a row) and y; returns
 * the number of rows, or -1 when the file cannot be read. */
static int64_t read_digits(const char *path, float *x, int64_t *y, int64_t max) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  int64_t n = 0;
  while (n < max) {
    int v, ok = 1;
    for (int j = 0; j < 65 && ok; ++j) {
      ok = fscanf(f, j ? ",%d" : "%d", &v) == 1;
      if (ok && j < 64)
        x[n * 64 + j] = (float)v;
      else if (ok)
        y[n] = v;
    }
    if (!ok)
      break;
    ++n;
  }
  fclose(f);
  return n;
}

#endif
