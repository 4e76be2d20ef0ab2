/* Trains the digits MLP in C through the library's train step: EPOCHS passes
 * over the first ROWS rows of digits.csv in order, in batches of
 * DIGITS_BATCH, at the train block's learning rate; then saves the weights,
 * which nnc eval and nnc predict read.
 *   ./train examples/data/digits.csv ROWS EPOCHS out.safetensors */
#include "digits.h"
#include "digits_data.h"

#define MAX_ROWS 4096

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s DIGITS.csv ROWS EPOCHS OUT.safetensors\n", argv[0]);
    return 2;
  }
  static float x[MAX_ROWS * DIGITS_X_SIZE];
  static int64_t y[MAX_ROWS];
  int64_t n = read_digits(argv[1], x, y, MAX_ROWS), rows = atoll(argv[2]), epochs = atoll(argv[3]);
  if (n <= 0 || rows < DIGITS_BATCH || rows > n) {
    fprintf(stderr, "need between %d and %lld rows\n", DIGITS_BATCH, (long long)n);
    return 1;
  }
  digits_model *model;
  digits_context *ctx;
  if (digits_open(&model, NULL) || digits_context_create(model, &ctx)) {
    fprintf(stderr, "error: %s\n", digits_last_error());
    return 1;
  }
  for (int64_t e = 1; e <= epochs; ++e) {
    double sum = 0;
    int64_t steps = 0;
    for (int64_t i = 0; i + DIGITS_BATCH <= rows; i += DIGITS_BATCH, ++steps) {
      float loss;
      if (digits_train_step(ctx, DIGITS_BATCH, x + i * DIGITS_X_SIZE, y + i, DIGITS_LR, &loss)) {
        fprintf(stderr, "error: %s\n", digits_last_error());
        return 1;
      }
      sum += loss;
    }
    float all;
    if (digits_evaluate(ctx, n, x, y, &all)) {
      fprintf(stderr, "error: %s\n", digits_last_error());
      return 1;
    }
    printf("epoch %lld: train loss %.4f, loss over all %lld rows %.4f\n", (long long)e, sum / (double)steps,
           (long long)n, all);
  }
  if (digits_save(model, argv[4])) {
    fprintf(stderr, "error: %s\n", digits_last_error());
    return 1;
  }
  printf("wrote %s\n", argv[4]);
  digits_context_destroy(ctx);
  digits_close(model);
  return 0;
}
