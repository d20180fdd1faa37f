package dev.ember;

/** Why a generation ended (same order as {@code EMBER_STOP_*} in ember.h). */
public enum StopReason {
    /** {@code maxTokens} tokens were generated. */
    MAX_TOKENS,
    /** The model produced an end-of-generation token. */
    END_OF_GENERATION,
    /** A stop string appeared (it is not part of the text). */
    STOP_STRING,
    /** The {@link TokenCallback} returned false. */
    CALLBACK,
    /** {@link EmberSession#abort()} was called. */
    ABORTED,
    /** The context filled up; what was generated is kept. */
    CONTEXT_FULL
}
