/* Predicts the digit of every row of digits.csv with the library
 * `nnc compile examples/digits_mlp.nn` wrote, and prints each row's class
 * and probability as nnc predict does, then the accuracy.
 *   cc predict.c -I DIR -L DIR -ldigits -Wl,-rpath,DIR -o predict
 *   ./predict examples/data/digits.csv [weights.safetensors] */
#include "digits.h"
#include "digits_data.h"

#define MAX_ROWS 4096

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIGITS.csv [WEIGHTS.safetensors]\n", argv[0]);
    return 2;
  }
  static float x[MAX_ROWS * DIGITS_X_SIZE], probs[MAX_ROWS * DIGITS_PROBS_SIZE];
  static int64_t y[MAX_ROWS];
  int64_t n = read_digits(argv[1], x, y, MAX_ROWS);
  if (n <= 0) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  digits_model *model;
  digits_context *ctx;
  if (digits_open(&model, argc > 2 ? argv[2] : NULL) || digits_context_create(model, &ctx)) {
    fprintf(stderr, "error: %s\n", digits_last_error());
    return 1;
  }
  if (digits_predict(ctx, n, x, probs)) {
    fprintf(stderr, "error: %s\n", digits_last_error());
    return 1;
  }
  int64_t hits = 0;
  printf("row,class,probability,label\n");
  for (int64_t i = 0; i < n; ++i) {
    const float *p = probs + i * DIGITS_PROBS_SIZE;
    int best = 0;
    for (int c = 1; c < DIGITS_PROBS_SIZE; ++c)
      if (p[c] > p[best])
        best = c;
    hits += best == y[i];
    printf("%lld,%d,%.6f,%lld\n", (long long)i, best, (double)p[best], (long long)y[i]);
  }
  fprintf(stderr, "%s: accuracy %.4f on %lld rows\n", digits_variant(model), (double)hits / (double)n, (long long)n);
  digits_context_destroy(ctx);
  digits_close(model);
  return 0;
}
