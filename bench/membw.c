// Memory read bandwidth: T threads each stream their part of a 1 GiB buffer (far larger than
// any cache) with 32-byte loads; prints the best of several passes in GB/s. The buffer is
// written first so every page is resident. Build: cc -O2 -mavx2 -pthread membw.c -o membw
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (1ull << 30)
static uint8_t *buf;
static int n_threads;
static pthread_barrier_t barrier;
static volatile long long sink;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *reader(void *arg) {
  long i = (long)arg;
  size_t part = BYTES / n_threads;
  const __m256i *p = (const __m256i *)(buf + i * part), *end = (const __m256i *)(buf + (i + 1) * part);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  pthread_barrier_wait(&barrier);
  for (; p < end; p += 4) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(p));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(p + 1));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(p + 2));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(p + 3));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  sink += _mm256_extract_epi64(s, 0);
  pthread_barrier_wait(&barrier);
  return NULL;
}

int main(int argc, char **argv) {
  n_threads = argc > 1 ? atoi(argv[1]) : 1;
  if (n_threads < 1 || n_threads > 256) return 2;
  if (posix_memalign((void **)&buf, 64, BYTES)) return 1;
  memset(buf, 1, BYTES);
  double best = 0;
  for (int pass = 0; pass < 5; pass++) {
    pthread_t th[256];
    pthread_barrier_init(&barrier, NULL, n_threads + 1);
    for (long i = 0; i < n_threads; i++) pthread_create(&th[i], NULL, reader, (void *)i);
    pthread_barrier_wait(&barrier);
    double t0 = now();
    pthread_barrier_wait(&barrier);
    double dt = now() - t0;
    for (int i = 0; i < n_threads; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    if (BYTES / dt / 1e9 > best) best = BYTES / dt / 1e9;
  }
  printf("%.2f\n", best);
  return 0;
}
