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
    /** -1 none; else the C API's EMBER_CONSTRAINT_* kind, or 4 for choices. */
    int constraintKind = -1;
    String constraint = null;
    String[] choices = null;

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

    /** The output is one JSON value valid under this JSON Schema (a JSON document). An invalid
     *  schema fails the generate call with {@link EmberException#INVALID_ARGUMENT} before any
     *  token is generated. */
    public GenerateOptions jsonSchema(String schema) {
        return constrain(0, schema, null);
    }

    /** The output is any JSON value. */
    public GenerateOptions jsonAny() {
        return constrain(1, null, null);
    }

    /** The whole output matches this regular expression (Rust {@code regex} syntax). */
    public GenerateOptions regex(String pattern) {
        return constrain(2, pattern, null);
    }

    /** The output follows this grammar (llguidance's Lark-like syntax, docs/constraints.md). */
    public GenerateOptions grammar(String lark) {
        return constrain(3, lark, null);
    }

    /** The output is exactly one of these strings. */
    public GenerateOptions choices(String... options) {
        return constrain(4, null, options.clone());
    }

    /** No constraint (the default). */
    public GenerateOptions unconstrained() {
        return constrain(-1, null, null);
    }

    private GenerateOptions constrain(int kind, String text, String[] options) {
        this.constraintKind = kind;
        this.constraint = text;
        this.choices = options;
        return this;
    }
}
