// Minimal driver over llama.h that records what tests/golden/make_golden.py stores: llama.cpp's
// tokenization, the greedy continuation and the top-N log-softmax of the raw logits at every step.
// Built by scripts/build_llama_cpp.sh against the static llama.cpp libraries.
//
// usage: llama-golden MODEL N_CTX N_THREADS N_PREDICT N_PROBS < requests
// request line:  <add_bos 0|1> <prompt as lowercase hex of its UTF-8 bytes>
// reply:         INFO ... lines once, then per request
//                PROMPT <n> <id>...
//                STEP <generated id> <top id> <top logprob> ... (N_PROBS pairs)   x N_PREDICT
//                END
// Diagnostics only (not used for the goldens): LLAMA_GOLDEN_UBATCH=n sets n_ubatch (1 = the prompt goes
// through the single-token kernels), LLAMA_GOLDEN_NO_REPACK=1 turns off CPU weight repacking.
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static std::string from_hex(const std::string & hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back((char) std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return out;
}

int main(int argc, char ** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL N_CTX N_THREADS N_PREDICT N_PROBS < requests\n", argv[0]);
        return 2;
    }
    const int n_ctx     = atoi(argv[2]);
    const int n_threads = atoi(argv[3]);
    const int n_predict = atoi(argv[4]);
    const int n_probs   = atoi(argv[5]);

    llama_log_set(quiet_log, nullptr);
    llama_backend_init();

    llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers       = 0;
    if (getenv("LLAMA_GOLDEN_NO_REPACK")) {  // diagnostics only: plain ggml kernels
        mparams.use_extra_bufts = false;
    }
    llama_model * model        = llama_model_load_from_file(argv[1], mparams);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int           n_vocab = llama_vocab_n_tokens(vocab);

    llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx                = n_ctx;
    cparams.n_batch              = n_ctx;  // the whole prompt is one llama_decode call
    cparams.n_seq_max            = 1;
    cparams.n_threads            = n_threads;
    cparams.n_threads_batch      = n_threads;
    cparams.flash_attn_type      = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cparams.type_k               = GGML_TYPE_F16;
    cparams.type_v               = GGML_TYPE_F16;
    cparams.no_perf              = true;
    if (getenv("LLAMA_GOLDEN_UBATCH")) {  // diagnostics only
        cparams.n_ubatch = atoi(getenv("LLAMA_GOLDEN_UBATCH"));
    }
    llama_context * ctx          = llama_init_from_model(model, cparams);
    if (!ctx) {
        fprintf(stderr, "cannot create context\n");
        return 1;
    }

    printf("INFO n_vocab %d\n", n_vocab);
    printf("INFO n_batch %u n_ubatch %u\n", llama_n_batch(ctx), llama_n_ubatch(ctx));
    printf("INFO system %s\n", llama_print_system_info());
    printf("INFO eog");
    for (int t = 0; t < n_vocab; t++) {
        if (llama_vocab_is_eog(vocab, t)) {
            printf(" %d", t);
        }
    }
    printf("\nREADY\n");
    fflush(stdout);

    std::string line;
    std::vector<int> order(n_vocab);
    while (std::getline(std::cin, line)) {
        if (line.empty()) {
            continue;
        }
        const bool        add_bos = line[0] == '1';
        const std::string text    = from_hex(line.substr(2));

        std::vector<llama_token> toks(text.size() + 8);
        int n = llama_tokenize(vocab, text.c_str(), (int) text.size(), toks.data(), (int) toks.size(), add_bos, true);
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(vocab, text.c_str(), (int) text.size(), toks.data(), (int) toks.size(), add_bos, true);
        }
        toks.resize(n);
        printf("PROMPT %d", n);
        for (llama_token t : toks) {
            printf(" %d", t);
        }
        printf("\n");
        if (n + n_predict > n_ctx) {
            fprintf(stderr, "prompt too long\n");
            return 1;
        }

        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_decode(ctx, llama_batch_get_one(toks.data(), n)) != 0) {
            fprintf(stderr, "decode failed\n");
            return 1;
        }
        for (int step = 0; step < n_predict; step++) {
            const float * logits = llama_get_logits_ith(ctx, -1);
            // log-softmax over the full vocabulary, in double
            double max_l = -INFINITY;
            for (int t = 0; t < n_vocab; t++) {
                max_l = std::max(max_l, (double) logits[t]);
            }
            double sum = 0.0;
            for (int t = 0; t < n_vocab; t++) {
                sum += std::exp((double) logits[t] - max_l);
            }
            const double log_z = max_l + std::log(sum);

            // greedy with EOG tokens banned (llama.cpp's ignore_eos); ties go to the lowest id
            llama_token next = -1;
            for (int t = 0; t < n_vocab; t++) {
                if (!llama_vocab_is_eog(vocab, t) && (next < 0 || logits[t] > logits[next])) {
                    next = t;
                }
            }

            std::iota(order.begin(), order.end(), 0);
            std::partial_sort(order.begin(), order.begin() + n_probs, order.end(), [&](int a, int b) {
                return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
            });
            printf("STEP %d", next);
            for (int i = 0; i < n_probs; i++) {
                printf(" %d %.9g", order[i], (double) logits[order[i]] - log_z);
            }
            printf("\n");

            if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) {
                fprintf(stderr, "decode failed\n");
                return 1;
            }
        }
        printf("END\n");
        fflush(stdout);
    }

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
