package dev.ember;

/** What one {@code generate} call produced. */
public final class Generation {
    private final int[] tokens;
    private final String text;
    private final StopReason stopReason;
    private final int promptTokens;
    private final double promptMillis;
    private final double generateMillis;
    private final int drafted;
    private final int draftAccepted;
    private final boolean escalated;
    private final double confidence;

    /** Called from native code. */
    Generation(int[] tokens, String text, int stopReason, int promptTokens, double promptMillis,
            double generateMillis, int drafted, int draftAccepted, boolean escalated,
            double confidence) {
        this.tokens = tokens;
        this.text = text;
        this.stopReason = StopReason.values()[stopReason];
        this.promptTokens = promptTokens;
        this.promptMillis = promptMillis;
        this.generateMillis = generateMillis;
        this.drafted = drafted;
        this.draftAccepted = draftAccepted;
        this.escalated = escalated;
        this.confidence = confidence;
    }

    /** Generated token ids (an end-of-generation token is not included). */
    public int[] tokens() {
        return tokens.clone();
    }

    /** The generated text, without a matched stop string. */
    public String text() {
        return text;
    }

    public StopReason stopReason() {
        return stopReason;
    }

    /** Prompt tokens evaluated by this call. */
    public int promptTokens() {
        return promptTokens;
    }

    public double promptMillis() {
        return promptMillis;
    }

    public double generateMillis() {
        return generateMillis;
    }

    /** Generation speed; the first token is timed with the prompt (as llama.cpp does). */
    public double tokensPerSecond() {
        return Math.max(tokens.length - 1, 0) / Math.max(generateMillis / 1000.0, 1e-9);
    }

    /** With a draft: tokens it proposed. */
    public int drafted() {
        return drafted;
    }

    /** With a draft: how many of the proposed tokens the target accepted. */
    public int draftAccepted() {
        return draftAccepted;
    }

    /** With a consultant: whether it answered (this model was less sure than the threshold). */
    public boolean escalated() {
        return escalated;
    }

    /** With a consultant: this model's confidence in its own answer, 0..1. */
    public double confidence() {
        return confidence;
    }
}
