package dev.ember;

import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One conversation: a KV cache over a model. Calls are serialized (one generation at a time);
 * {@link #abort()} may be called from any thread, e.g. a UI's stop button, and {@link #close()}
 * aborts a running generation and waits for it. Close it when done.
 */
public final class EmberSession implements AutoCloseable {
    static {
        NativeLibrary.load();
    }

    private final Ember model;
    private long handle;
    /** Read side: abort (lock-free for the generating thread); write side: close. */
    private final ReentrantReadWriteLock freeLock = new ReentrantReadWriteLock();

    EmberSession(Ember model, long handle) {
        this.model = model;
        this.handle = handle;
    }

    private long handle() {
        if (handle == 0) {
            throw new IllegalStateException("the session is closed");
        }
        return handle;
    }

    /**
     * Continue the conversation with {@code prompt} text and generate. BOS is added if the
     * session is empty; control tokens in the text are recognized. Needs the model open.
     *
     * @param callback receives text as it is generated; may be null
     */
    public synchronized Generation generate(String prompt, GenerateOptions options,
            TokenCallback callback) throws EmberException {
        int[] ids = model.tokenize(prompt, tokensInContext() == 0, true);
        return generate(ids, options, callback);
    }

    /** Continue the conversation with prompt token ids (may be empty) and generate. */
    public synchronized Generation generate(int[] prompt, GenerateOptions options,
            TokenCallback callback) throws EmberException {
        GenerateOptions o = options != null ? options : new GenerateOptions();
        return nativeGenerate(handle(), prompt, o.maxTokens, o.stop, o.ignoreEos, o.temperature,
                o.topK, o.topP, o.minP, o.repeatPenalty, o.penaltyLastN, o.seed,
                o.constraintKind, o.constraint, o.choices, callback);
    }

    /**
     * Answer the last message of a conversation: renders {@code messages} with the model's chat
     * template, starts the session afresh and generates the assistant's reply.
     */
    public synchronized Generation chat(List<ChatMessage> messages, GenerateOptions options,
            TokenCallback callback) throws EmberException {
        String prompt = model.applyChatTemplate(messages, true);
        int[] ids = model.tokenize(prompt, false, true);
        reset();
        return generate(ids, options, callback);
    }

    /** Stop the running generation after the current token (it returns with
     *  {@link StopReason#ABORTED}; while still reading the prompt it throws
     *  {@link EmberException#ABORTED}). If none is running, the next one stops at once.
     *  Any thread. */
    public void abort() {
        freeLock.readLock().lock();
        try {
            long h = handle;
            if (h != 0) {
                nativeAbort(h);
            }
        } finally {
            freeLock.readLock().unlock();
        }
    }

    /**
     * Speculative decoding: {@code draftModel}, a small model of this model's family (the same
     * vocabulary), proposes up to {@code maxTokens} tokens per step and this model verifies
     * them in one pass: the same output (greedy: the same tokens), faster. The session must be
     * made with {@link SessionOptions#draftMax} of at least {@code maxTokens}. Null stops
     * drafting. Not with a constraint or a consultant.
     */
    public synchronized void useDraft(Ember draftModel, int maxTokens) throws EmberException {
        nativeSetDraft(handle(), draftModel == null ? 0 : draftModel.handle(), maxTokens);
    }

    /**
     * A cascade: this model answers first and, when its confidence (the geometric mean of its
     * answer's token probabilities) is below {@code threshold}, {@code consultant}, a larger
     * model of the same family, answers the same context instead; the callback then receives
     * the whole answer at once, and the KV cache holds that answer. Null stops consulting.
     * Not with a constraint or a draft.
     */
    public synchronized void useConsultant(Ember consultant, double threshold)
            throws EmberException {
        nativeSetConsultant(handle(), consultant == null ? 0 : consultant.handle(), threshold);
    }

    /** Forget the conversation (empty the KV cache). */
    public synchronized void reset() {
        nativeReset(handle());
    }

    /** Tokens in the KV cache. */
    public synchronized int tokensInContext() {
        return nativeNumber(handle(), 0);
    }

    public synchronized int contextLength() {
        return nativeNumber(handle(), 1);
    }

    /** Abort a running generation, wait for it, release the session. Idempotent. */
    @Override
    public void close() {
        abort();
        synchronized (this) {
            freeLock.writeLock().lock();
            try {
                if (handle != 0) {
                    nativeFree(handle);
                    handle = 0;
                }
            } finally {
                freeLock.writeLock().unlock();
            }
        }
    }

    static native long nativeNew(long model, int nCtx, int nBatch, int nThreads, int device,
            int draftMax) throws EmberException;

    private static native void nativeSetDraft(long handle, long draftModel, int maxTokens)
            throws EmberException;

    private static native void nativeSetConsultant(long handle, long model, double threshold)
            throws EmberException;

    private static native void nativeFree(long handle);

    private static native int nativeNumber(long handle, int which);

    private static native void nativeReset(long handle);

    private static native void nativeAbort(long handle);

    private static native Generation nativeGenerate(long handle, int[] prompt, int maxTokens,
            String[] stop, boolean ignoreEos, float temperature, int topK, float topP, float minP,
            float repeatPenalty, int penaltyLastN, long seed, int constraintKind,
            String constraint, String[] choices, TokenCallback callback)
            throws EmberException;
}
