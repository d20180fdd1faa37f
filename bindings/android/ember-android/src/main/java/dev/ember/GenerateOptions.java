package dev.ember;

/** Sampler settings and stop conditions; the defaults are llama.cpp's. Setters chain:
 *  {@code GenerateOptions.greedy().maxTokens(64).stop("\n\n")}. */
public final class GenerateOptions {
    int maxTokens = 128;
    float temperature = 0.8f;
    int topK = 40;
    float topP = 0.95f;
    float minP = 0.05f;
    float repeatPenalty = 1.0f;
    int penaltyLastN = 64;
    long seed = 0x5EED;
    String[] stop = new String[0];
    boolean ignoreEos = false;

    /** Always the most likely token: deterministic output. */
    public static GenerateOptions greedy() {
        return new GenerateOptions().temperature(0f);
    }

    public GenerateOptions maxTokens(int n) {
        this.maxTokens = n;
        return this;
    }

    /** 0 means greedy. */
    public GenerateOptions temperature(float t) {
        this.temperature = t;
        return this;
    }

    /** 0 disables. */
    public GenerateOptions topK(int k) {
        this.topK = k;
        return this;
    }

    /** 1 disables. */
    public GenerateOptions topP(float p) {
        this.topP = p;
        return this;
    }

    /** 0 disables. */
    public GenerateOptions minP(float p) {
        this.minP = p;
        return this;
    }

    /** 1 disables; applies to the last {@code lastN} tokens. */
    public GenerateOptions repeatPenalty(float penalty, int lastN) {
        this.repeatPenalty = penalty;
        this.penaltyLastN = lastN;
        return this;
    }

    /** Same seed, same text. */
    public GenerateOptions seed(long seed) {
        this.seed = seed;
        return this;
    }

    /** Stop as soon as the text contains one of these (not included in the text). */
    public GenerateOptions stop(String... strings) {
        this.stop = strings.clone();
        return this;
    }

    /** Keep going past end-of-generation tokens. */
    public GenerateOptions ignoreEos(boolean ignore) {
        this.ignoreEos = ignore;
        return this;
    }
}
