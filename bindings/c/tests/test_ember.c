/*
 * Tests of the C API through include/ember.h, as a C program sees it. Built by
 * scripts/test_bindings.sh with `gcc -Wall -Wextra -Werror -std=c11`, linked once against
 * libember.so and once against libember.a, and run under valgrind.
 *
 * usage: test_ember MODEL.gguf REFERENCE.txt
 *   REFERENCE.txt: line 1 the prompt's token ids, line 2 the ids greedy generation produced,
 *   both written by the Rust API (the `ember run --json` CLI) for REFERENCE_PROMPT below.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

#define REFERENCE_PROMPT "The capital of France is"
#define N_GENERATE 8
#define MAX_IDS 256

static int g_check_failures;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            g_check_failures++;                                                          \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed (last error: \"%s\")\n", __FILE__, \
                    __LINE__, #cond, ember_last_error());                                \
        }                                                                                \
    } while (0)

/* A call's status must be `expected`; on failure also show both names. */
#define CHECK_STATUS(call, expected)                                                         \
    do {                                                                                     \
        ember_status_t st_ = (call);                                                         \
        if (st_ != (expected)) {                                                             \
            g_check_failures++;                                                              \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), expected %s (last error: \"%s\")\n", \
                    __FILE__, __LINE__, #call, st_, ember_status_str(st_), #expected,        \
                    ember_last_error());                                                     \
        }                                                                                    \
    } while (0)

static const char *g_model_path;
static ember_token_t g_ref_prompt[MAX_IDS];
static size_t g_ref_prompt_len;
static ember_token_t g_ref_gen[MAX_IDS];
static size_t g_ref_gen_len;
static ember_model_t *g_model; /* shared by the tests after test_load */

static size_t read_ids_line(FILE *f, ember_token_t *ids) {
    char line[8192];
    size_t n = 0;
    if (!fgets(line, sizeof line, f)) return 0;
    for (char *p = strtok(line, " \n"); p && n < MAX_IDS; p = strtok(NULL, " \n")) {
        ids[n++] = (ember_token_t)strtoul(p, NULL, 10);
    }
    return n;
}

static ember_session_t *new_session(uint32_t n_ctx) {
    ember_session_params_t p = ember_session_default_params();
    /* The CPU explicitly: these tests run under valgrind, where probing for a GPU (Vulkan
       loader, Mesa) would be slow and noisy. The GPU device is tested from Rust. */
    p.device = EMBER_DEVICE_CPU;
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    ember_session_t *s = NULL;
    CHECK_STATUS(ember_session_new(g_model, &p, &s), EMBER_OK);
    return s;
}

static ember_sampler_t *new_greedy_sampler(void) {
    ember_sampler_params_t sp = ember_sampler_greedy_params();
    ember_sampler_t *smp = NULL;
    CHECK_STATUS(ember_sampler_new(&sp, ember_model_n_vocab(g_model), &smp), EMBER_OK);
    return smp;
}

/* ---------------------------------------------------------------- basics */

static void test_version_and_status_names(void) {
    const char *v = ember_version();
    CHECK(v != NULL && strlen(v) >= 5 && strchr(v, '.') != NULL);
    CHECK(strcmp(ember_status_str(EMBER_OK), "ok") == 0);
    CHECK(strcmp(ember_status_str(EMBER_ERR_BUFFER_TOO_SMALL), "buffer too small") == 0);
    CHECK(strcmp(ember_status_str(-12345), "unknown status") == 0);
    ember_model_params_t mp = ember_model_default_params();
    CHECK(mp.use_mmap && mp.progress_callback == NULL);
    ember_session_params_t sp = ember_session_default_params();
    CHECK(sp.n_ctx == 4096 && sp.device == EMBER_DEVICE_AUTO);
    ember_generate_params_t gp = ember_generate_default_params();
    CHECK(gp.max_tokens == 128 && gp.stop == NULL && gp.on_text == NULL);
}

/* ---------------------------------------------------------------- loading */

static void test_null_pointers_are_rejected(void) {
    ember_model_t *m = (ember_model_t *)&m; /* must be reset to NULL on failure */
    CHECK_STATUS(ember_model_load(NULL, NULL, &m), EMBER_ERR_NULL_POINTER);
    CHECK(m == NULL);
    CHECK(strstr(ember_last_error(), "path") != NULL);
    CHECK_STATUS(ember_model_load(g_model_path, NULL, NULL), EMBER_ERR_NULL_POINTER);
    size_t n = 0;
    CHECK_STATUS(ember_tokenize(NULL, "a", 1, true, true, NULL, 0, &n), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_detokenize(NULL, NULL, 0, false, false, NULL, 0, &n), EMBER_ERR_NULL_POINTER);
    ember_session_t *s = NULL;
    CHECK_STATUS(ember_session_new(NULL, NULL, &s), EMBER_ERR_NULL_POINTER);
    CHECK(s == NULL);
    CHECK_STATUS(ember_generate(NULL, NULL, NULL, 0, NULL, NULL), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_session_abort(NULL), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_session_eval(NULL, NULL, 0), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_sampler_new(NULL, 10, NULL), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_chat_template_new(NULL, NULL, NULL, NULL), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_chat_template_render(NULL, NULL, 0, true, NULL, 0, NULL),
                 EMBER_ERR_NULL_POINTER);
    CHECK(ember_model_n_vocab(NULL) == 0);
    CHECK(ember_model_token_bos(NULL) == EMBER_TOKEN_NONE);
    CHECK(ember_session_n_past(NULL) == 0);
    /* The free functions accept NULL. */
    ember_model_free(NULL);
    ember_session_free(NULL);
    ember_sampler_free(NULL);
    ember_chat_template_free(NULL);
    CHECK(strcmp(ember_last_error(), "") == 0);
}

static void test_missing_file_is_an_io_error(void) {
    ember_model_t *m = NULL;
    CHECK_STATUS(ember_model_load("/nonexistent/ember/model.gguf", NULL, &m), EMBER_ERR_IO);
    CHECK(m == NULL);
    CHECK(strstr(ember_last_error(), "/nonexistent/ember/model.gguf") != NULL);
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len;
}

static void test_corrupt_files_are_invalid_models(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/ember_c_test_%ld.gguf", (long)getpid());
    ember_model_t *m = NULL;

    /* Not a GGUF file at all. */
    const char junk[] = "this is not a GGUF file, just some text that is long enough";
    CHECK(write_file(path, junk, sizeof junk));
    CHECK_STATUS(ember_model_load(path, NULL, &m), EMBER_ERR_INVALID_MODEL);
    CHECK(m == NULL);

    /* The real model cut short: a valid header whose data ends early. */
    FILE *src = fopen(g_model_path, "rb");
    CHECK(src != NULL);
    if (src) {
        size_t len = 1 << 20;
        char *head = malloc(len);
        CHECK(head != NULL && fread(head, 1, len, src) == len);
        fclose(src);
        CHECK(write_file(path, head, len));
        free(head);
        CHECK_STATUS(ember_model_load(path, NULL, &m), EMBER_ERR_INVALID_MODEL);
        CHECK(m == NULL);
    }

    /* Empty file. */
    CHECK(write_file(path, "", 0));
    ember_status_t st = ember_model_load(path, NULL, &m);
    CHECK(st == EMBER_ERR_INVALID_MODEL || st == EMBER_ERR_IO);
    CHECK(m == NULL);
    remove(path);
}

struct progress {
    int calls;
    float last;
    int monotonic;
    float abort_at; /* return false once progress reaches this (> 1: never) */
};

static bool on_progress(float p, void *user_data) {
    struct progress *pr = user_data;
    if (p < pr->last) pr->monotonic = 0;
    pr->last = p;
    pr->calls++;
    return p < pr->abort_at;
}

static void test_progress_callback_can_abort_load(void) {
    /* Reading (no mmap) reports progress as it goes; stop at 20%. */
    struct progress pr = {0, 0.0f, 1, 0.2f};
    ember_model_params_t mp = ember_model_default_params();
    mp.use_mmap = false;
    mp.progress_callback = on_progress;
    mp.progress_user_data = &pr;
    ember_model_t *m = NULL;
    CHECK_STATUS(ember_model_load(g_model_path, &mp, &m), EMBER_ERR_ABORTED);
    CHECK(m == NULL);
    CHECK(pr.calls >= 2 && pr.last >= 0.2f && pr.last < 1.0f);
}

static void test_load_reports_progress_to_completion(void) {
    struct progress pr = {0, 0.0f, 1, 2.0f};
    ember_model_params_t mp = ember_model_default_params();
    mp.progress_callback = on_progress;
    mp.progress_user_data = &pr;
    CHECK_STATUS(ember_model_load(g_model_path, &mp, &g_model), EMBER_OK);
    CHECK(g_model != NULL);
    CHECK(pr.monotonic && pr.last == 1.0f && pr.calls >= 2);
}

/* ---------------------------------------------------------------- model info */

static void test_model_info(void) {
    char buf[64];
    size_t len = 0;
    CHECK_STATUS(ember_model_architecture(g_model, buf, sizeof buf, &len), EMBER_OK);
    CHECK(strcmp(buf, "llama") == 0 && len == 5);
    CHECK(ember_model_n_vocab(g_model) == 49152);
    CHECK(ember_model_n_params(g_model) > 100000000ull && ember_model_n_params(g_model) < 200000000ull);
    CHECK(ember_model_n_ctx_train(g_model) == 8192);
    CHECK(ember_model_file_size(g_model) > 50000000ull);
    CHECK_STATUS(ember_model_name(g_model, buf, sizeof buf, &len), EMBER_OK);
    CHECK(len > 0 && strlen(buf) == len);

    /* Buffer too small: the size needed is reported and nothing is written. */
    char tiny[3] = {'x', 'x', 'x'};
    CHECK_STATUS(ember_model_architecture(g_model, tiny, 5, &len), EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5 && tiny[0] == 'x');

    /* Size query with NULL, then the real call. */
    len = 0;
    CHECK_STATUS(ember_model_chat_template(g_model, NULL, 0, &len), EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(len > 0);
    char *tmpl = malloc(len + 1);
    size_t len2 = 0;
    CHECK_STATUS(ember_model_chat_template(g_model, tmpl, len + 1, &len2), EMBER_OK);
    CHECK(len2 == len && strlen(tmpl) == len && strstr(tmpl, "im_start") != NULL);
    free(tmpl);
    /* A non-NULL capacity with a NULL buffer is a NULL pointer. */
    CHECK_STATUS(ember_model_architecture(g_model, NULL, 10, &len), EMBER_ERR_NULL_POINTER);

    ember_token_t eos = ember_model_token_eos(g_model);
    CHECK(eos != EMBER_TOKEN_NONE && ember_model_token_is_eog(g_model, eos));
    CHECK(!ember_model_token_is_eog(g_model, g_ref_prompt[g_ref_prompt_len - 1]));
    CHECK(!ember_model_token_is_eog(g_model, 4000000000u));
}

/* ---------------------------------------------------------------- tokenizer */

static void test_tokenize_matches_rust_api(void) {
    ember_token_t ids[MAX_IDS];
    size_t n = 0;
    const char *text = REFERENCE_PROMPT;
    CHECK_STATUS(ember_tokenize(g_model, text, strlen(text), true, true, ids, MAX_IDS, &n), EMBER_OK);
    CHECK(n == g_ref_prompt_len);
    CHECK(n == g_ref_prompt_len && memcmp(ids, g_ref_prompt, n * sizeof *ids) == 0);

    /* NULL text or array with a non-zero size is refused; the count output is optional. */
    CHECK_STATUS(ember_tokenize(g_model, NULL, 3, true, true, ids, MAX_IDS, &n), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_tokenize(g_model, text, strlen(text), true, true, NULL, 50, &n),
                 EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_tokenize(g_model, text, strlen(text), true, true, ids, MAX_IDS, NULL), EMBER_OK);
    /* Invalid UTF-8 is tokenized (as U+FFFD), not refused. */
    size_t n_bad = 0;
    CHECK_STATUS(ember_tokenize(g_model, "a\xff", 2, false, false, ids, MAX_IDS, &n_bad), EMBER_OK);
    CHECK(n_bad >= 1);

    /* Too small: count reported, nothing written. */
    ember_token_t small[2] = {777, 777};
    size_t needed = 0;
    CHECK_STATUS(ember_tokenize(g_model, text, strlen(text), true, true, small, 2, &needed),
                 EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == n && small[0] == 777 && small[1] == 777);
    /* Size query. */
    CHECK_STATUS(ember_tokenize(g_model, text, strlen(text), true, true, NULL, 0, &needed),
                 EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == n);
    /* Empty text: zero tokens (SmolLM2 adds no BOS), success with a NULL buffer. */
    CHECK_STATUS(ember_tokenize(g_model, "", 0, true, true, NULL, 0, &needed), EMBER_OK);
    CHECK(needed == 0);
    /* Special tokens are parsed only when asked. */
    const char *special = "<|im_start|>";
    CHECK_STATUS(ember_tokenize(g_model, special, strlen(special), false, true, ids, MAX_IDS, &n),
                 EMBER_OK);
    CHECK(n == 1);
    CHECK_STATUS(ember_tokenize(g_model, special, strlen(special), false, false, ids, MAX_IDS, &n),
                 EMBER_OK);
    CHECK(n > 1);
}

static void test_detokenize_round_trips(void) {
    char buf[256];
    size_t len = 0;
    CHECK_STATUS(ember_detokenize(g_model, g_ref_prompt, g_ref_prompt_len, true, false, buf,
                                  sizeof buf, &len),
                 EMBER_OK);
    CHECK(strcmp(buf, REFERENCE_PROMPT) == 0 && len == strlen(REFERENCE_PROMPT));
    /* Exactly len bytes is one too few: the NUL needs room. */
    char small[64];
    memset(small, 'x', sizeof small);
    CHECK_STATUS(ember_detokenize(g_model, g_ref_prompt, g_ref_prompt_len, true, false, small,
                                  strlen(REFERENCE_PROMPT), &len),
                 EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(REFERENCE_PROMPT) && small[0] == 'x');

    ember_token_t bad[2] = {g_ref_prompt[0], 999999};
    CHECK_STATUS(ember_detokenize(g_model, bad, 2, false, false, buf, sizeof buf, &len),
                 EMBER_ERR_INVALID_TOKEN);
    CHECK_STATUS(ember_token_to_piece(g_model, 999999, false, buf, sizeof buf, &len),
                 EMBER_ERR_INVALID_TOKEN);
    CHECK_STATUS(ember_token_to_piece(g_model, g_ref_prompt[0], false, buf, sizeof buf, &len),
                 EMBER_OK);
    CHECK(len > 0 && strncmp(buf, REFERENCE_PROMPT, len) == 0);
    /* A control token prints only with `special`. */
    ember_token_t eos = ember_model_token_eos(g_model);
    CHECK_STATUS(ember_token_to_piece(g_model, eos, false, buf, sizeof buf, &len), EMBER_OK);
    CHECK(len == 0 && buf[0] == '\0');
    CHECK_STATUS(ember_token_to_piece(g_model, eos, true, buf, sizeof buf, &len), EMBER_OK);
    CHECK(len > 0);
}

struct worker {
    int index;
    int ok;
};

static void *tokenize_worker(void *arg) {
    struct worker *w = arg;
    w->ok = 1;
    for (int i = 0; i < 20; i++) {
        ember_token_t ids[MAX_IDS];
        size_t n = 0;
        if (w->index % 2 == 0) {
            /* Even threads succeed and must see no error message. */
            ember_status_t st = ember_tokenize(g_model, REFERENCE_PROMPT, strlen(REFERENCE_PROMPT),
                                               true, true, ids, MAX_IDS, &n);
            if (st != EMBER_OK || n != g_ref_prompt_len ||
                memcmp(ids, g_ref_prompt, n * sizeof *ids) != 0 || ember_last_error()[0] != '\0')
                w->ok = 0;
        } else {
            /* Odd threads fail and must see their own message. */
            ember_status_t st = ember_tokenize(g_model, REFERENCE_PROMPT, strlen(REFERENCE_PROMPT),
                                               true, true, ids, 1, &n);
            if (st != EMBER_ERR_BUFFER_TOO_SMALL || strstr(ember_last_error(), "capacity 1") == NULL)
                w->ok = 0;
        }
    }
    return NULL;
}

static void test_model_is_shared_across_threads_with_per_thread_errors(void) {
    pthread_t threads[4];
    struct worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i].index = i;
        workers[i].ok = 0;
        CHECK(pthread_create(&threads[i], NULL, tokenize_worker, &workers[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(workers[i].ok);
    }
}

/* ---------------------------------------------------------------- generation */

struct stream {
    char text[4096];
    size_t len;
    int pieces;
    int stop_after; /* return false after this many pieces (0: never) */
    int bad_piece;  /* a piece whose len disagreed with its NUL */
};

static bool on_text(const char *text, size_t len, void *user_data) {
    struct stream *s = user_data;
    if (strlen(text) != len) s->bad_piece = 1;
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, text, len);
        s->len += len;
        s->text[s->len] = '\0';
    }
    s->pieces++;
    return s->stop_after == 0 || s->pieces < s->stop_after;
}

static void test_greedy_generation_matches_rust_api_and_streams(void) {
    ember_session_t *s = new_session(64);
    ember_sampler_t *smp = new_greedy_sampler();
    struct stream st = {0};
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = N_GENERATE;
    gp.ignore_eos = true;
    gp.on_text = on_text;
    gp.user_data = &st;
    ember_token_t ids[MAX_IDS];
    char text[4096];
    ember_generation_t r = {0};
    r.tokens = ids;
    r.tokens_capacity = MAX_IDS;
    r.text = text;
    r.text_capacity = sizeof text;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    CHECK(r.n_tokens == g_ref_gen_len);
    CHECK(r.n_tokens == g_ref_gen_len && memcmp(ids, g_ref_gen, r.n_tokens * sizeof *ids) == 0);
    CHECK(r.stop_reason == EMBER_STOP_MAX_TOKENS);
    CHECK(r.n_prompt_eval == g_ref_prompt_len);
    CHECK(r.text_len == strlen(text) && r.text_len > 0);
    /* What was streamed is exactly the result text, in more than one piece. */
    CHECK(st.len == r.text_len && strcmp(st.text, text) == 0);
    CHECK(st.pieces > 1 && !st.bad_piece);
    /* The generated ids detokenize to the same text. */
    char again[4096];
    size_t len = 0;
    CHECK_STATUS(ember_detokenize(g_model, ids, r.n_tokens, false, false, again, sizeof again, &len),
                 EMBER_OK);
    CHECK(strcmp(again, text) == 0);
    /* The cache holds the prompt and every generated token. */
    CHECK(ember_session_n_past(s) == g_ref_prompt_len + N_GENERATE);
    CHECK(ember_session_n_ctx(s) == 64);

    /* Result buffers that are too small are filled as far as they go. */
    CHECK_STATUS(ember_session_reset(s), EMBER_OK);
    CHECK_STATUS(ember_sampler_reset(smp), EMBER_OK);
    CHECK(ember_session_n_past(s) == 0);
    ember_token_t few[4];
    char short_text[8];
    ember_generation_t r2 = {0};
    r2.tokens = few;
    r2.tokens_capacity = 4;
    r2.text = short_text;
    r2.text_capacity = sizeof short_text;
    gp.on_text = NULL;
    gp.max_tokens = 5;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r2), EMBER_OK);
    CHECK(r2.n_tokens == 5 && memcmp(few, g_ref_gen, sizeof few) == 0);
    CHECK(r2.text_len >= sizeof short_text && strlen(short_text) == sizeof short_text - 1);
    CHECK(strncmp(short_text, text, strlen(short_text)) == 0);

    ember_sampler_free(smp);
    ember_session_free(s);
}

static void test_eval_logits_and_sampler_agree_with_generate(void) {
    ember_session_t *s = new_session(64);
    ember_sampler_t *smp = new_greedy_sampler();
    size_t n = 0;
    CHECK_STATUS(ember_session_logits(s, NULL, 0, &n), EMBER_ERR_INVALID_ARGUMENT); /* nothing yet */
    CHECK_STATUS(ember_session_eval(s, g_ref_prompt, g_ref_prompt_len), EMBER_OK);
    CHECK(ember_session_n_past(s) == g_ref_prompt_len);
    CHECK_STATUS(ember_session_logits(s, NULL, 0, &n), EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(n == ember_model_n_vocab(g_model));
    float *logits = malloc(n * sizeof *logits);
    CHECK_STATUS(ember_session_logits(s, logits, n, &n), EMBER_OK);
    ember_token_t next = 0;
    CHECK_STATUS(ember_sampler_sample(smp, logits, n, &next), EMBER_OK);
    CHECK(next == g_ref_gen[0]);
    CHECK_STATUS(ember_sampler_accept(smp, next), EMBER_OK);
    free(logits);
    /* Truncate back to the prompt's first token. */
    CHECK_STATUS(ember_session_truncate(s, 1), EMBER_OK);
    CHECK(ember_session_n_past(s) == 1);
    ember_token_t bad = 999999;
    CHECK_STATUS(ember_session_eval(s, &bad, 1), EMBER_ERR_INVALID_TOKEN);
    CHECK_STATUS(ember_session_eval(s, g_ref_prompt, 0), EMBER_ERR_INVALID_ARGUMENT);
    ember_sampler_free(smp);
    ember_session_free(s);
}

static void test_callback_can_stop_generation(void) {
    ember_session_t *s = new_session(64);
    ember_sampler_t *smp = new_greedy_sampler();
    struct stream st = {0};
    st.stop_after = 2;
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = N_GENERATE;
    gp.ignore_eos = true;
    gp.on_text = on_text;
    gp.user_data = &st;
    ember_generation_t r = {0};
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    CHECK(r.stop_reason == EMBER_STOP_CALLBACK);
    CHECK(st.pieces == 2 && r.n_tokens >= 2 && r.n_tokens < N_GENERATE);
    ember_sampler_free(smp);
    ember_session_free(s);
}

static void test_stop_string_ends_generation(void) {
    /* Learn the greedy text, then stop at its second word. */
    char full[4096];
    size_t len = 0;
    CHECK_STATUS(ember_detokenize(g_model, g_ref_gen, g_ref_gen_len, false, false, full, sizeof full, &len),
                 EMBER_OK);
    char stop_word[64] = {0};
    const char *w = strchr(full + 1, ' '); /* the space before the second word */
    CHECK(w != NULL);
    if (!w) return;
    size_t wl = strcspn(w + 1, " ,.\n");
    if (wl > 20) wl = 20;
    memcpy(stop_word, w, wl + 1);
    const char *stops[2] = {"never appears in the text", stop_word};

    ember_session_t *s = new_session(64);
    ember_sampler_t *smp = new_greedy_sampler();
    struct stream st = {0};
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = N_GENERATE;
    gp.ignore_eos = true;
    gp.stop = stops;
    gp.n_stop = 2;
    gp.on_text = on_text;
    gp.user_data = &st;
    char text[4096];
    ember_generation_t r = {0};
    r.text = text;
    r.text_capacity = sizeof text;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    CHECK(r.stop_reason == EMBER_STOP_STOP_STRING);
    size_t at = (size_t)(w - full);
    CHECK(r.text_len == at && strncmp(text, full, at) == 0);
    CHECK(strstr(st.text, stop_word) == NULL && strcmp(st.text, text) == 0);
    ember_sampler_free(smp);
    ember_session_free(s);
}

/* Generate greedily under `c` from `prompt` into `text`; returns the stop reason. */
static ember_stop_reason_t generate_constrained(ember_constraint_t *c, const char *prompt,
                                                char *text, size_t cap) {
    ember_token_t ids[MAX_IDS];
    size_t n = 0;
    CHECK_STATUS(ember_tokenize(g_model, prompt, strlen(prompt), true, false, ids, MAX_IDS, &n),
                 EMBER_OK);
    ember_session_t *s = new_session(256);
    ember_sampler_t *smp = new_greedy_sampler();
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = 24;
    gp.constraint = c;
    ember_generation_t r = {0};
    r.text = text;
    r.text_capacity = cap;
    text[0] = '\0';
    CHECK_STATUS(ember_generate(s, smp, ids, n, &gp, &r), EMBER_OK);
    ember_sampler_free(smp);
    ember_session_free(s);
    return r.stop_reason;
}

static void test_choices_constraint_picks_one_choice(void) {
    const char *choices[3] = {"red", "green", "blue"};
    ember_constraint_t *c = NULL;
    CHECK_STATUS(ember_constraint_new_choices(g_model, choices, 3, &c), EMBER_OK);
    char text[256];
    const char *prompt = "The sky on a clear day is the color";
    CHECK(generate_constrained(c, prompt, text, sizeof text) == EMBER_STOP_END_OF_GENERATION);
    int found = 0;
    for (int i = 0; i < 3; i++) found |= strcmp(text, choices[i]) == 0;
    CHECK(found);
    /* The same constraint again: it starts over, so the same text comes out. */
    char again[256];
    CHECK(generate_constrained(c, prompt, again, sizeof again) == EMBER_STOP_END_OF_GENERATION);
    CHECK(strcmp(text, again) == 0);
    ember_constraint_free(c);
}

static void test_regex_constraint_output_matches(void) {
    /* Checked with POSIX regexec, an engine independent of ember's. */
    const char *pattern = "[0-9]{3}-[0-9]{4}";
    ember_constraint_t *c = NULL;
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_REGEX, pattern, &c), EMBER_OK);
    char text[256];
    CHECK(generate_constrained(c, "My phone number is", text, sizeof text) ==
          EMBER_STOP_END_OF_GENERATION);
    regex_t re;
    CHECK(regcomp(&re, "^[0-9]{3}-[0-9]{4}$", REG_EXTENDED | REG_NOSUB) == 0);
    CHECK(regexec(&re, text, 0, NULL, 0) == 0);
    regfree(&re);
    ember_constraint_free(c);

    /* JSON: a one-field object whose value is an integer; the shape is checked by hand. */
    const char *schema = "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\"}},"
                         "\"required\":[\"age\"],\"additionalProperties\":false}";
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_JSON_SCHEMA, schema, &c), EMBER_OK);
    CHECK(generate_constrained(c, "Alice is 31 years old. As JSON:", text, sizeof text) ==
          EMBER_STOP_END_OF_GENERATION);
    CHECK(regcomp(&re, "^\\{\"age\": -?[0-9]+\\}$", REG_EXTENDED | REG_NOSUB) == 0);
    CHECK(regexec(&re, text, 0, NULL, 0) == 0);
    regfree(&re);
    ember_constraint_free(c);
}

static void test_bad_constraints_are_rejected(void) {
    ember_constraint_t *c = (ember_constraint_t *)&c; /* must be set to NULL on failure */
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_JSON_SCHEMA, "{not json", &c),
                 EMBER_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_REGEX, "(unclosed", &c),
                 EMBER_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_GRAMMAR, "start: undefined_rule", &c),
                 EMBER_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ember_constraint_new(g_model, 42, "x", &c), EMBER_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ember_constraint_new(g_model, EMBER_CONSTRAINT_REGEX, NULL, &c),
                 EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_constraint_new(NULL, EMBER_CONSTRAINT_JSON_ANY, NULL, &c),
                 EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_constraint_new_choices(g_model, NULL, 0, &c), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    ember_constraint_free(NULL);

    /* A constraint compiled for another model (here: a second load of the same file). */
    ember_model_t *other = NULL;
    CHECK_STATUS(ember_model_load(g_model_path, NULL, &other), EMBER_OK);
    CHECK_STATUS(ember_constraint_new(other, EMBER_CONSTRAINT_JSON_ANY, NULL, &c), EMBER_OK);
    ember_session_t *s = new_session(64);
    ember_sampler_t *smp = new_greedy_sampler();
    ember_generate_params_t gp = ember_generate_default_params();
    gp.constraint = c;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, NULL),
                 EMBER_ERR_INVALID_ARGUMENT);
    ember_sampler_free(smp);
    ember_session_free(s);
    ember_constraint_free(c);
    ember_model_free(other);
}

struct abort_ctx {
    ember_session_t *session;
    atomic_int pieces;
    atomic_int aborter_done;
    ember_status_t busy_status;
    uint32_t n_past_seen;
};

static bool count_pieces(const char *text, size_t len, void *user_data) {
    (void)text;
    (void)len;
    struct abort_ctx *c = user_data;
    /* Hold the second piece until the other thread has acted: the abort then lands mid-generation
     * however the threads are scheduled (valgrind runs one thread at a time). */
    if (atomic_fetch_add(&c->pieces, 1) + 1 == 2) {
        struct timespec ms = {0, 1000000};
        while (!atomic_load(&c->aborter_done)) nanosleep(&ms, NULL);
    }
    return true;
}

static void *aborter(void *arg) {
    struct abort_ctx *c = arg;
    struct timespec ms = {0, 1000000};
    while (atomic_load(&c->pieces) < 2) nanosleep(&ms, NULL);
    /* The session is generating on the other thread: other calls are refused, not raced. */
    c->busy_status = ember_session_reset(c->session);
    c->n_past_seen = ember_session_n_past(c->session);
    ember_session_abort(c->session);
    atomic_store(&c->aborter_done, 1);
    return NULL;
}

static void test_abort_from_another_thread(void) {
    struct abort_ctx c;
    c.session = new_session(256);
    atomic_init(&c.pieces, 0);
    atomic_init(&c.aborter_done, 0);
    c.busy_status = EMBER_OK;
    c.n_past_seen = 0;
    ember_sampler_t *smp = new_greedy_sampler();
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = 200;
    gp.ignore_eos = true;
    gp.on_text = count_pieces;
    gp.user_data = &c;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, aborter, &c) == 0);
    ember_generation_t r = {0};
    CHECK_STATUS(ember_generate(c.session, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    pthread_join(t, NULL);
    CHECK(r.stop_reason == EMBER_STOP_ABORTED);
    CHECK(r.n_tokens >= 2 && r.n_tokens < 200);
    CHECK(c.busy_status == EMBER_ERR_BUSY);
    CHECK(c.n_past_seen == 0); /* the count from before the running call */

    /* An abort requested before generate stops it while reading the prompt, once. */
    CHECK_STATUS(ember_session_reset(c.session), EMBER_OK);
    CHECK_STATUS(ember_session_abort(c.session), EMBER_OK);
    gp.max_tokens = 2;
    gp.on_text = NULL;
    CHECK_STATUS(ember_generate(c.session, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r),
                 EMBER_ERR_ABORTED);
    CHECK_STATUS(ember_generate(c.session, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    CHECK(r.n_tokens == 2);
    ember_sampler_free(smp);
    ember_session_free(c.session);
}

static void test_context_overflow_is_reported(void) {
    ember_session_t *s = new_session(8);
    ember_sampler_t *smp = new_greedy_sampler();
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = 64;
    gp.ignore_eos = true;
    ember_generation_t r = {0};
    /* Filling the context while generating ends the generation, keeping what was generated. */
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r), EMBER_OK);
    CHECK(r.stop_reason == EMBER_STOP_CONTEXT_FULL);
    CHECK(r.n_tokens == 8 - g_ref_prompt_len);
    CHECK(ember_session_n_past(s) == 8);
    /* A prompt longer than the context is refused before anything is evaluated. */
    CHECK_STATUS(ember_session_reset(s), EMBER_OK);
    ember_token_t many[9];
    for (int i = 0; i < 9; i++) many[i] = g_ref_prompt[i % g_ref_prompt_len];
    CHECK_STATUS(ember_session_eval(s, many, 9), EMBER_ERR_CONTEXT_FULL);
    CHECK(ember_session_n_past(s) == 0);
    ember_sampler_free(smp);
    ember_session_free(s);
}

static void test_invalid_arguments_are_rejected(void) {
    ember_sampler_params_t sp = ember_sampler_default_params();
    sp.top_p = 2.0f;
    ember_sampler_t *smp = (ember_sampler_t *)&sp;
    CHECK_STATUS(ember_sampler_new(&sp, 100, &smp), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(smp == NULL);

    ember_session_params_t p = ember_session_default_params();
    ember_session_t *s = NULL;
    p.n_batch = 0;
    CHECK_STATUS(ember_session_new(g_model, &p, &s), EMBER_ERR_INVALID_ARGUMENT);
    p = ember_session_default_params();
    p.device = 99;
    CHECK_STATUS(ember_session_new(g_model, &p, &s), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);

    s = new_session(32);
    smp = new_greedy_sampler();
    ember_generate_params_t gp = ember_generate_default_params();
    gp.max_tokens = 2;
    ember_token_t bad[2] = {1, 999999};
    CHECK_STATUS(ember_generate(s, smp, bad, 2, &gp, NULL), EMBER_ERR_INVALID_TOKEN);
    CHECK(ember_session_n_past(s) == 0);
    CHECK_STATUS(ember_generate(s, smp, NULL, 0, &gp, NULL), EMBER_ERR_INVALID_ARGUMENT);
    const char *bad_utf8[1] = {"\xff\xfe"};
    gp.stop = bad_utf8;
    gp.n_stop = 1;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, NULL),
                 EMBER_ERR_INVALID_ARGUMENT);
    const char *null_stop[1] = {NULL};
    gp.stop = null_stop;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, NULL),
                 EMBER_ERR_NULL_POINTER);
    gp.stop = NULL;
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, NULL),
                 EMBER_ERR_NULL_POINTER); /* n_stop = 1 with no array */
    gp.n_stop = 0;
    ember_generation_t r = {0};
    r.tokens_capacity = 4; /* but no array */
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, &gp, &r),
                 EMBER_ERR_NULL_POINTER);
    CHECK(ember_session_n_past(s) == 0); /* bad buffers are found before any work */
    ember_sampler_free(smp);
    ember_session_free(s);
}

/* ---------------------------------------------------------------- chat templates */

static void test_chat_template_renders(void) {
    ember_chat_template_t *t = NULL;
    CHECK_STATUS(ember_chat_template_from_model(g_model, &t), EMBER_OK);
    ember_chat_message_t msgs[2] = {{"system", "Be brief."}, {"user", "Hi"}};
    size_t len = 0;
    CHECK_STATUS(ember_chat_template_render(t, msgs, 2, true, NULL, 0, &len),
                 EMBER_ERR_BUFFER_TOO_SMALL);
    char *text = malloc(len + 1);
    CHECK_STATUS(ember_chat_template_render(t, msgs, 2, true, text, len + 1, &len), EMBER_OK);
    CHECK(strstr(text, "<|im_start|>user\nHi<|im_end|>") != NULL);
    CHECK(len >= 22 && strcmp(text + len - 22, "<|im_start|>assistant\n") == 0);
    free(text);
    ember_chat_message_t bad = {"user", NULL};
    CHECK_STATUS(ember_chat_template_render(t, &bad, 1, true, NULL, 0, &len), EMBER_ERR_NULL_POINTER);
    ember_chat_template_free(t);

    CHECK_STATUS(ember_chat_template_new("{% if %}", NULL, NULL, &t), EMBER_ERR_TEMPLATE);
    CHECK(t == NULL);
    CHECK_STATUS(ember_chat_template_new("{{ raise_exception('no') }}", "", "", &t), EMBER_OK);
    CHECK_STATUS(ember_chat_template_render(t, msgs, 1, false, NULL, 0, &len), EMBER_ERR_TEMPLATE);
    ember_chat_template_free(t);
}

/* ---------------------------------------------------------------- runner */

/* ember_plan_estimate: a profile, this device (NULL), and each kind of failure. */
static void test_plan_estimate(void) {
    ember_plan_estimate_t e;
    CHECK_STATUS(ember_plan_estimate(g_model_path, 2048, "pi5", &e), EMBER_OK);
    /* SmolLM2's embedding table is its output head: every byte of the file is read. */
    CHECK(e.file_bytes == ember_model_file_size(g_model) && e.weights_bytes == e.file_bytes);
    CHECK(e.kv_bytes == 2ull * 30 * 192 * 2 * 2048); /* f16 K and V: layers x kv_dim x ctx */
    CHECK(e.resident_bytes == e.weights_bytes + e.kv_bytes + e.scratch_bytes + e.runtime_bytes);
    CHECK(e.fits && e.margin_bytes == (int64_t)e.usable_bytes - (int64_t)e.resident_bytes);
    CHECK(e.n_ctx == 2048 && e.n_prompt == 512);
    CHECK(e.decode_tokens_per_s > 0 && e.prefill_tokens_per_s > 0 && e.ttft_ms > 0);
    CHECK(strcmp(ember_last_error(), "") == 0);

    /* NULL device: this machine, measured; 0: the training context. */
    CHECK_STATUS(ember_plan_estimate(g_model_path, 0, NULL, &e), EMBER_OK);
    CHECK(e.n_ctx == ember_model_n_ctx_train(g_model) && e.usable_bytes > 0);

    CHECK_STATUS(ember_plan_estimate(NULL, 512, "pi5", &e), EMBER_ERR_NULL_POINTER);
    CHECK(strstr(ember_last_error(), "model_path") != NULL && e.resident_bytes == 0);
    CHECK_STATUS(ember_plan_estimate(g_model_path, 512, "pi5", NULL), EMBER_ERR_NULL_POINTER);
    CHECK_STATUS(ember_plan_estimate(g_model_path, 512, "nokia3310", &e), EMBER_ERR_NOT_FOUND);
    CHECK(strstr(ember_last_error(), "nokia3310") != NULL && strstr(ember_last_error(), "pi5") != NULL);
    CHECK_STATUS(ember_plan_estimate("/nonexistent/ember/model.gguf", 512, "pi5", &e), EMBER_ERR_IO);
    CHECK(strstr(ember_last_error(), "/nonexistent/ember/model.gguf") != NULL);
}

struct test {
    const char *name;
    void (*fn)(void);
    int needs_model;
};

/* ---------------------------------------------------------------- small and large together */

/* Greedy generation of the reference prompt with `gp`, into `ids` / `text`. */
static ember_generation_t generate_reference(ember_session_t *s, ember_generate_params_t *gp,
                                             ember_token_t *ids, char *text, size_t cap) {
    ember_sampler_t *smp = new_greedy_sampler();
    gp->max_tokens = N_GENERATE;
    gp->ignore_eos = true;
    ember_generation_t r = {0};
    r.tokens = ids;
    r.tokens_capacity = MAX_IDS;
    r.text = text;
    r.text_capacity = cap;
    text[0] = '\0';
    CHECK_STATUS(ember_generate(s, smp, g_ref_prompt, g_ref_prompt_len, gp, &r), EMBER_OK);
    ember_sampler_free(smp);
    return r;
}

static void test_draft_keeps_the_greedy_output(void) {
    ember_session_params_t p = ember_session_default_params();
    p.device = EMBER_DEVICE_CPU;
    p.n_ctx = 64;
    p.n_threads = 1;
    p.draft_max = 4;
    ember_session_t *target = NULL;
    CHECK_STATUS(ember_session_new(g_model, &p, &target), EMBER_OK);
    ember_draft_t *d = NULL;
    /* The default draft length (8) is more than this target scores per pass. */
    CHECK_STATUS(ember_draft_new(g_model, target, NULL, &d), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    ember_draft_params_t dp = ember_draft_default_params();
    dp.max_tokens = 4;
    dp.p_min = 2.0f;
    CHECK_STATUS(ember_draft_new(g_model, target, &dp, &d), EMBER_ERR_INVALID_ARGUMENT);
    dp.p_min = 0.0f;
    CHECK_STATUS(ember_draft_new(g_model, target, &dp, &d), EMBER_OK);
    /* The model drafting for itself: greedy output is the reference, and every drafted token
       is accepted. */
    ember_generate_params_t gp = ember_generate_default_params();
    gp.draft = d;
    ember_token_t ids[MAX_IDS];
    char text[1024];
    ember_generation_t r = generate_reference(target, &gp, ids, text, sizeof text);
    CHECK(r.n_tokens == g_ref_gen_len && memcmp(ids, g_ref_gen, r.n_tokens * sizeof *ids) == 0);
    CHECK(r.n_drafted > 0 && r.n_draft_accepted == r.n_drafted);
    CHECK(ember_session_n_past(target) == g_ref_prompt_len + N_GENERATE);
    /* A draft with a constraint is refused. */
    const char *choices[1] = {"yes"};
    ember_constraint_t *c = NULL;
    CHECK_STATUS(ember_constraint_new_choices(g_model, choices, 1, &c), EMBER_OK);
    gp.constraint = c;
    ember_sampler_t *smp = new_greedy_sampler();
    CHECK_STATUS(ember_generate(target, smp, g_ref_prompt, 1, &gp, NULL),
                 EMBER_ERR_INVALID_ARGUMENT);
    ember_sampler_free(smp);
    ember_constraint_free(c);
    ember_draft_free(d);
    /* A session without draft_max cannot take a draft. */
    ember_session_t *plain = new_session(64);
    d = NULL;
    CHECK_STATUS(ember_draft_new(g_model, plain, &dp, &d), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    ember_draft_free(NULL);
    ember_session_free(plain);
    ember_session_free(target);
}

static void test_consultant_answers_below_the_threshold(void) {
    ember_session_t *s = new_session(64);
    ember_token_t own_ids[MAX_IDS];
    char own[1024];
    ember_generate_params_t gp = ember_generate_default_params();
    ember_generation_t alone = generate_reference(s, &gp, own_ids, own, sizeof own);
    CHECK(alone.n_tokens == g_ref_gen_len);

    ember_session_params_t cp = ember_session_default_params();
    cp.device = EMBER_DEVICE_CPU;
    cp.n_ctx = 64;
    cp.n_threads = 1;
    ember_consultant_t *c = NULL;
    CHECK_STATUS(ember_consultant_new(g_model, &cp, 0.5, 7, &c), EMBER_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK_STATUS(ember_consultant_new(g_model, &cp, -1.0, EMBER_CONFIDENCE_MEAN, &c),
                 EMBER_ERR_INVALID_ARGUMENT);
    /* Never escalating: this model's own answer and its confidence. */
    CHECK_STATUS(ember_consultant_new(g_model, &cp, 0.0, EMBER_CONFIDENCE_MEAN, &c), EMBER_OK);
    CHECK_STATUS(ember_session_reset(s), EMBER_OK);
    struct stream st = {0};
    gp = ember_generate_default_params();
    gp.consultant = c;
    gp.on_text = on_text;
    gp.user_data = &st;
    ember_token_t ids[MAX_IDS];
    char text[1024];
    ember_generation_t r = generate_reference(s, &gp, ids, text, sizeof text);
    CHECK(!r.escalated && r.confidence > 0.0 && r.confidence <= 1.0);
    CHECK(r.n_tokens == g_ref_gen_len && memcmp(ids, g_ref_gen, r.n_tokens * sizeof *ids) == 0);
    /* The whole answer is streamed once it is chosen. */
    CHECK(st.pieces == 1 && strcmp(st.text, own) == 0);
    double confidence = r.confidence;
    ember_consultant_free(c);

    /* Always escalating (threshold above 1): the consultant (here the same model, so the same
       answer) answers, and the cache holds the prompt and that answer. */
    c = NULL;
    CHECK_STATUS(ember_consultant_new(g_model, &cp, 1.5, EMBER_CONFIDENCE_MEAN, &c), EMBER_OK);
    CHECK_STATUS(ember_session_reset(s), EMBER_OK);
    gp.consultant = c;
    gp.on_text = NULL;
    r = generate_reference(s, &gp, ids, text, sizeof text);
    CHECK(r.escalated && r.confidence == confidence);
    CHECK(strcmp(text, own) == 0);
    CHECK(ember_session_n_past(s) == g_ref_prompt_len + r.n_tokens);
    ember_consultant_free(c);
    ember_consultant_free(NULL);
    ember_session_free(s);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf REFERENCE.txt\n", argv[0]);
        return 2;
    }
    g_model_path = argv[1];
    FILE *ref = fopen(argv[2], "r");
    if (!ref) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    g_ref_prompt_len = read_ids_line(ref, g_ref_prompt);
    g_ref_gen_len = read_ids_line(ref, g_ref_gen);
    fclose(ref);
    if (g_ref_prompt_len == 0 || g_ref_gen_len != N_GENERATE) {
        fprintf(stderr, "%s: expected prompt ids and %d generated ids\n", argv[2], N_GENERATE);
        return 2;
    }

    const struct test tests[] = {
        {"version_and_status_names", test_version_and_status_names, 0},
        {"null_pointers_are_rejected", test_null_pointers_are_rejected, 0},
        {"missing_file_is_an_io_error", test_missing_file_is_an_io_error, 0},
        {"corrupt_files_are_invalid_models", test_corrupt_files_are_invalid_models, 0},
        {"progress_callback_can_abort_load", test_progress_callback_can_abort_load, 0},
        {"load_reports_progress_to_completion", test_load_reports_progress_to_completion, 0},
        {"model_info", test_model_info, 1},
        {"tokenize_matches_rust_api", test_tokenize_matches_rust_api, 1},
        {"detokenize_round_trips", test_detokenize_round_trips, 1},
        {"model_is_shared_across_threads_with_per_thread_errors",
         test_model_is_shared_across_threads_with_per_thread_errors, 1},
        {"greedy_generation_matches_rust_api_and_streams",
         test_greedy_generation_matches_rust_api_and_streams, 1},
        {"eval_logits_and_sampler_agree_with_generate",
         test_eval_logits_and_sampler_agree_with_generate, 1},
        {"callback_can_stop_generation", test_callback_can_stop_generation, 1},
        {"stop_string_ends_generation", test_stop_string_ends_generation, 1},
        {"abort_from_another_thread", test_abort_from_another_thread, 1},
        {"context_overflow_is_reported", test_context_overflow_is_reported, 1},
        {"invalid_arguments_are_rejected", test_invalid_arguments_are_rejected, 1},
        {"chat_template_renders", test_chat_template_renders, 1},
        {"plan_estimate", test_plan_estimate, 1},
        {"choices_constraint_picks_one_choice", test_choices_constraint_picks_one_choice, 1},
        {"regex_constraint_output_matches", test_regex_constraint_output_matches, 1},
        {"bad_constraints_are_rejected", test_bad_constraints_are_rejected, 1},
        {"draft_keeps_the_greedy_output", test_draft_keeps_the_greedy_output, 1},
        {"consultant_answers_below_the_threshold", test_consultant_answers_below_the_threshold,
         1},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = g_check_failures;
        if (tests[i].needs_model && g_model == NULL) {
            fprintf(stderr, "  no model loaded\n");
            g_check_failures++;
        } else {
            tests[i].fn();
        }
        int ok = g_check_failures == before;
        printf("test %s ... %s\n", tests[i].name, ok ? "ok" : "FAILED");
        fflush(stdout);
        if (ok) passed++;
        else failed++;
    }
    ember_model_free(g_model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
