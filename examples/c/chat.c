/*
 * A streaming chat in plain C over ember.h.
 *
 *   cargo build --release -p ember-c
 *   gcc -std=c11 -Iinclude examples/c/chat.c -Ltarget/release -lember -o chat
 *   LD_LIBRARY_PATH=target/release ./chat models/SmolLM2-135M-Instruct.Q4_1.gguf [max_tokens]
 *
 * Type a message per line; an empty line or end of input quits. Each turn renders the whole
 * conversation with the model's chat template and streams the reply as it is generated.
 * (For brevity the KV cache is rebuilt every turn; `ember chat` reuses the shared prefix.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

#define MAX_TURNS 32

static int fail(const char *what, ember_status_t st) {
    fprintf(stderr, "%s: %s: %s\n", what, ember_status_str(st), ember_last_error());
    return 1;
}

static bool print_piece(const char *text, size_t len, void *user_data) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true; /* false would stop the reply here */
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [max_tokens]\n", argv[0]);
        return 2;
    }
    uint32_t max_tokens = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 256;

    ember_model_t *model = NULL;
    ember_status_t st = ember_model_load(argv[1], NULL, &model);
    if (st != EMBER_OK) return fail("load", st);
    ember_session_params_t sp = ember_session_default_params();
    sp.n_ctx = 2048;
    ember_session_t *session = NULL;
    ember_sampler_params_t smp_params = ember_sampler_default_params();
    smp_params.temperature = 0.0f; /* greedy: the same question gives the same answer */
    ember_sampler_t *sampler = NULL;
    ember_chat_template_t *tmpl = NULL;
    if ((st = ember_session_new(model, &sp, &session)) != EMBER_OK) return fail("session", st);
    if ((st = ember_sampler_new(&smp_params, ember_model_n_vocab(model), &sampler)) != EMBER_OK)
        return fail("sampler", st);
    if ((st = ember_chat_template_from_model(model, &tmpl)) != EMBER_OK)
        return fail("chat template", st);

    ember_chat_message_t messages[MAX_TURNS * 2];
    size_t n_messages = 0;
    char line[4096];
    int status = 0;
    fprintf(stderr, "ember %s: empty line to quit\n", ember_version());
    while (n_messages + 2 <= MAX_TURNS * 2) {
        fprintf(stderr, "you> ");
        if (!fgets(line, sizeof line, stdin) || line[0] == '\n') break;
        line[strcspn(line, "\n")] = '\0';
        messages[n_messages].role = "user";
        messages[n_messages].content = dup_str(line);
        n_messages++;

        /* Ask for the size, then render into a buffer of that size. */
        size_t len = 0;
        ember_chat_template_render(tmpl, messages, n_messages, true, NULL, 0, &len);
        char *prompt = malloc(len + 1);
        st = ember_chat_template_render(tmpl, messages, n_messages, true, prompt, len + 1, &len);
        size_t n_ids = 0;
        ember_tokenize(model, prompt, len, false, true, NULL, 0, &n_ids);
        ember_token_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
        if (st == EMBER_OK) st = ember_tokenize(model, prompt, len, false, true, ids, n_ids, &n_ids);
        free(prompt);
        if (st != EMBER_OK) {
            free(ids);
            status = fail("prompt", st);
            break;
        }

        ember_session_reset(session);
        ember_sampler_reset(sampler);
        ember_generate_params_t gp = ember_generate_default_params();
        gp.max_tokens = max_tokens;
        gp.on_text = print_piece;
        char reply[8192];
        ember_generation_t result = {0};
        result.text = reply;
        result.text_capacity = sizeof reply;
        printf("assistant> ");
        st = ember_generate(session, sampler, ids, n_ids, &gp, &result);
        printf("\n");
        free(ids);
        if (st != EMBER_OK) {
            status = fail("generate", st);
            break;
        }
        fprintf(stderr, "[%zu tokens, %.1f tok/s]\n", result.n_tokens,
                result.n_tokens / (result.generate_ms / 1000.0 + 1e-9));
        messages[n_messages].role = "assistant";
        messages[n_messages].content = dup_str(reply);
        n_messages++;
    }

    for (size_t i = 0; i < n_messages; i++) free((char *)messages[i].content);
    ember_chat_template_free(tmpl);
    ember_sampler_free(sampler);
    ember_session_free(session);
    ember_model_free(model);
    return status;
}
