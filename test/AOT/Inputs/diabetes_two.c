/* The library of examples/diabetes_two_input.nn (an f32 input standardized
 * with the checkpoint's statistics, an i64 input of category ids, a
 * regression output) on examples/data/diabetes.csv: prints each row as nnc
 * predict does (row,prediction,label), then trains one step and evaluates. */
#include "diabetestwo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 1024

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  static float x[MAX_ROWS * DIABETESTWO_X_SIZE], y[MAX_ROWS], progression[MAX_ROWS], prediction[MAX_ROWS];
  static int64_t sex[MAX_ROWS];
  FILE *f = fopen(argv[1], "r");
  char line[512];
  if (!f || !fgets(line, sizeof line, f)) /* the header */
    return 1;
  int64_t n = 0;
  while (n < MAX_ROWS && fgets(line, sizeof line, f)) {
    /* age,sex,bmi,bp,s1..s6,progression: x takes every column but sex and the label */
    double v[11];
    char *p = line;
    for (int j = 0; j < 11; ++j) {
      v[j] = strtod(p, &p);
      p += *p == ',';
    }
    x[n * 9] = (float)v[0];
    for (int j = 2; j < 10; ++j)
      x[n * 9 + j - 1] = (float)v[j];
    sex[n] = (int64_t)v[1];
    y[n] = (float)v[10];
    ++n;
  }
  fclose(f);
  diabetestwo_model *model;
  diabetestwo_context *ctx;
  if (diabetestwo_open(&model, argv[2]) || diabetestwo_context_create(model, &ctx) ||
      diabetestwo_predict(ctx, n, x, sex, progression, prediction)) {
    fprintf(stderr, "error: %s\n", diabetestwo_last_error());
    return 1;
  }
  printf("row,prediction,label\n");
  for (int64_t i = 0; i < n; ++i)
    printf("%lld,%g,%g\n", (long long)i, (double)prediction[i], (double)y[i]);
  float before, after, step;
  if (diabetestwo_evaluate(ctx, n, x, sex, y, &before) ||
      diabetestwo_train_step(ctx, DIABETESTWO_BATCH, x, sex, y, DIABETESTWO_LR, &step) ||
      diabetestwo_evaluate(ctx, n, x, sex, y, &after)) {
    fprintf(stderr, "error: %s\n", diabetestwo_last_error());
    return 1;
  }
  fprintf(stderr, "loss %.4f, after a step %.4f\n", before, after);
  return 0;
}
