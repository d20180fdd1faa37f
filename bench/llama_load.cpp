// Time llama.cpp's model load (llama_model_load_from_file: map + parse + any weight repacking,
// CPU backend, default parameters as llama-bench uses them), best of N runs, in milliseconds.
// Built by bench/run.sh against the static libraries of scripts/build_llama_cpp.sh.
#include "llama.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [RUNS]\n", argv[0]);
    return 2;
  }
  int runs = argc > 2 ? atoi(argv[2]) : 3;
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  double best = 1e30;
  for (int i = 0; i < runs; i++) {
    auto t0 = std::chrono::steady_clock::now();
    llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
    auto t1 = std::chrono::steady_clock::now();
    if (!m) return 1;
    llama_model_free(m);
    double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    if (ms < best) best = ms;
  }
  printf("%.1f\n", best);
  llama_backend_free();
  return 0;
}
