/* Two threads, each with a context of its own on one model, predict and
 * evaluate the digits at the same time, many times over; every result must
 * equal what one thread computed alone. A third thread's train steps (on a
 * second model) run meanwhile. Prints "threads: same" or what differed. */
#include "digits.h"
#include "digits_data.h"

#include <pthread.h>
#include <string.h>

#define MAX_ROWS 2048
#define ROUNDS 20

static float x[MAX_ROWS * DIGITS_X_SIZE], alone[MAX_ROWS * DIGITS_PROBS_SIZE];
static int64_t y[MAX_ROWS], n;
static float aloneLoss;
static digits_model *model, *other;

struct job {
  digits_context *ctx;
  float probs[MAX_ROWS * DIGITS_PROBS_SIZE];
  int failures;
};

static void *predicting(void *arg) {
  struct job *j = arg;
  for (int r = 0; r < ROUNDS; ++r) {
    float loss;
    if (digits_predict(j->ctx, n, x, j->probs) || digits_evaluate(j->ctx, n, x, y, &loss)) {
      fprintf(stderr, "error: %s\n", digits_last_error());
      j->failures++;
      continue;
    }
    j->failures += memcmp(j->probs, alone, sizeof(float) * (size_t)(n * DIGITS_PROBS_SIZE)) != 0 || loss != aloneLoss;
  }
  return NULL;
}

static void *training(void *arg) {
  digits_context *ctx = arg;
  for (int r = 0; r < ROUNDS; ++r)
    for (int64_t i = 0; i + DIGITS_BATCH <= n; i += DIGITS_BATCH)
      if (digits_train_step(ctx, DIGITS_BATCH, x + i * DIGITS_X_SIZE, y + i, DIGITS_LR, NULL)) {
        fprintf(stderr, "error: %s\n", digits_last_error());
        return ctx;
      }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  n = read_digits(argv[1], x, y, MAX_ROWS);
  digits_context *c0, *c1, *c2, *ct;
  if (n <= 0 || digits_open(&model, argv[2]) || digits_open(&other, argv[2]) || digits_context_create(model, &c0) ||
      digits_context_create(model, &c1) || digits_context_create(model, &c2) || digits_context_create(other, &ct)) {
    fprintf(stderr, "error: %s\n", digits_last_error());
    return 1;
  }
  if (digits_predict(c0, n, x, alone) || digits_evaluate(c0, n, x, y, &aloneLoss))
    return 1;
  static struct job a, b;
  a.ctx = c1;
  b.ctx = c2;
  pthread_t ta, tb, tt;
  pthread_create(&ta, NULL, predicting, &a);
  pthread_create(&tb, NULL, predicting, &b);
  pthread_create(&tt, NULL, training, ct);
  void *trainFailed;
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_join(tt, &trainFailed);
  if (a.failures || b.failures || trainFailed) {
    printf("threads: %d and %d of %d rounds differed%s\n", a.failures, b.failures, ROUNDS,
           trainFailed ? "; training failed" : "");
    return 1;
  }
  printf("threads: same over %d rounds of %lld rows\n", ROUNDS, (long long)n);
  digits_context_destroy(c0);
  digits_context_destroy(c1);
  digits_context_destroy(c2);
  digits_context_destroy(ct);
  digits_close(model);
  digits_close(other);
  return 0;
}
