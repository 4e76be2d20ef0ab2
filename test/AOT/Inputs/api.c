/* The library's API beyond predicting, and its refusals: the tensors by
 * name, get and set, save and load, and each error code with its message.
 * Prints one line per check. */
#include "digits.h"
#include "digits_data.h"

#include <string.h>

#define ROWS 64

static float x[ROWS * DIGITS_X_SIZE], probs[ROWS * DIGITS_PROBS_SIZE], again[ROWS * DIGITS_PROBS_SIZE];
static int64_t y[ROWS];

static void report(const char *what, int rc) { printf("%s: %d %s\n", what, rc, rc ? digits_last_error() : ""); }

int main(int argc, char **argv) {
  if (argc != 4 || read_digits(argv[1], x, y, ROWS) != ROWS)
    return 2;
  digits_model *m;
  digits_context *c;
  if (digits_open(&m, NULL) || digits_context_create(m, &c))
    return 1;
  int n = digits_tensor_count(m);
  for (int i = 0; i < n; ++i)
    printf("tensor %s %lld\n", digits_tensor_name(m, i), (long long)digits_tensor_size(m, digits_tensor_name(m, i)));
  printf("size of nonesuch: %lld\n", (long long)digits_tensor_size(m, "nonesuch"));

  /* set_tensor changes the predictions; save and load bring them back. */
  static float bias[DIGITS_PROBS_SIZE], zeros[DIGITS_PROBS_SIZE];
  report("get", digits_get_tensor(m, "logits.b", bias, DIGITS_PROBS_SIZE));
  report("predict", digits_predict(c, ROWS, x, probs));
  report("save", digits_save(m, argv[2]));
  bias[3] += 5;
  report("set", digits_set_tensor(m, "logits.b", bias, DIGITS_PROBS_SIZE));
  digits_predict(c, ROWS, x, again);
  printf("set changes predictions: %s\n", memcmp(probs, again, sizeof probs) ? "yes" : "no");
  report("load", digits_load(m, argv[2]));
  digits_predict(c, ROWS, x, again);
  printf("load restores them: %s\n", memcmp(probs, again, sizeof probs) ? "no" : "yes");

  report("set_threads 1", digits_set_threads(1));
  report("predict on 1 thread", digits_predict(c, ROWS, x, again));
  report("set_threads 0", digits_set_threads(0));

  /* Refusals. */
  report("get nonesuch", digits_get_tensor(m, "nonesuch", zeros, 1));
  report("get wrong count", digits_get_tensor(m, "logits.b", zeros, 3));
  report("predict 0 rows", digits_predict(c, 0, x, probs));
  const float *none = NULL;
  report("predict null input", digits_predict(c, ROWS, none, probs));
  report("train 5 rows", digits_train_step(c, 5, x, y, DIGITS_LR, NULL));
  report("evaluate null label", digits_evaluate(c, ROWS, x, NULL, zeros));
  report("load missing file", digits_load(m, "/nonexistent/w.safetensors"));
  report("load corrupt file", digits_load(m, argv[3]));
  digits_predict(c, ROWS, x, again);
  printf("a failed load keeps the weights: %s\n", memcmp(probs, again, sizeof probs) ? "no" : "yes");
  digits_model *bad;
  report("open corrupt file", digits_open(&bad, argv[3]));
  report("open null", digits_open(NULL, NULL));
  report("set_threads -1", digits_set_threads(-1));
  digits_context_destroy(c);
  digits_close(m);
  return 0;
}
