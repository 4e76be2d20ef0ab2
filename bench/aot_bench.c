/* Times predict through a library `nnc compile` wrote (bench/run.sh's
 * nnc-aot rows): BATCH rows of random raw features per call, warm-up calls
 * first, then calls for SECONDS; prints one JSON line with the median and
 * fastest call. Built per model against its header:
 *   cc -O2 -include fashionmlp.h -DPREFIX=fashionmlp_ -DUPREFIX=FASHIONMLP_ \
 *      bench/aot_bench.c -I DIR -L DIR -lfashionmlp -o aot-bench
 *   ./aot-bench WORKLOAD THREADS SECONDS
 * The model has one f32 input x and one output probs (the fashion models). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(PREFIX, name)
#define SIZE(name) CAT(UPREFIX, name)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s WORKLOAD THREADS SECONDS\n", argv[0]);
    return 2;
  }
  const char *workload = argv[1];
  int threads = atoi(argv[2]);
  double seconds = atof(argv[3]);
  const int64_t batch = SIZE(BATCH);
  float *x = malloc(sizeof(float) * (size_t)(batch * SIZE(X_SIZE)));
  float *probs = malloc(sizeof(float) * (size_t)(batch * SIZE(PROBS_SIZE)));
  for (int64_t i = 0; i < batch * SIZE(X_SIZE); ++i)
    x[i] = (float)(rand() % 256);
  CAT(PREFIX, model) * model;
  CAT(PREFIX, context) * ctx;
  if (FN(set_threads)(threads) || FN(open)(&model, NULL) || FN(context_create)(model, &ctx)) {
    fprintf(stderr, "error: %s\n", FN(last_error)());
    return 1;
  }
  for (int i = 0; i < 5; ++i)
    FN(predict)(ctx, batch, x, probs);
  int cap = 1 << 20, n = 0;
  double *times = malloc(sizeof(double) * (size_t)cap), start = now();
  while (n < cap && (n < 10 || now() - start < seconds)) {
    double t0 = now();
    if (FN(predict)(ctx, batch, x, probs)) {
      fprintf(stderr, "error: %s\n", FN(last_error)());
      return 1;
    }
    times[n++] = now() - t0;
  }
  qsort(times, (size_t)n, sizeof(double), cmp);
  double median = times[n / 2] * 1e3;
  printf("{\"peer\": \"nnc-aot\", \"workload\": \"%s\", \"batch\": %lld, \"threads\": %d, \"ms\": %.6f, "
         "\"min_ms\": %.6f, \"steps\": %d, \"samples_per_second\": %.1f, \"variant\": \"%s\"}\n",
         workload, (long long)batch, threads, median, times[0] * 1e3, n, (double)batch / (median / 1e3),
         FN(variant)(model));
  FN(context_destroy)(ctx);
  FN(close)(model);
  return 0;
}
