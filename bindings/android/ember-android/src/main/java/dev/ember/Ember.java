package dev.ember;

import java.util.List;

/**
 * A loaded model (GGUF file). Thread-safe: tokenize and create sessions from any thread.
 * Close it when done (try-with-resources / Kotlin {@code use}); sessions made from it keep
 * working after it is closed.
 *
 * <pre>{@code
 * try (Ember model = Ember.load("/data/.../SmolLM2-135M-Instruct.Q4_1.gguf");
 *      EmberSession session = model.newSession(new SessionOptions().contextLength(2048))) {
 *     Generation g = session.chat(List.of(ChatMessage.user("Hi!")), GenerateOptions.greedy(),
 *             text -> { System.out.print(text); return true; });
 * }
 * }</pre>
 */
public final class Ember implements AutoCloseable {
    static {
        NativeLibrary.load();
    }

    private long handle;

    private Ember(long handle) {
        this.handle = handle;
    }

    /** The native library's version, "MAJOR.MINOR.PATCH". */
    public static String version() {
        return nativeVersion();
    }

    /** Load a model, memory-mapped. */
    public static Ember load(String path) throws EmberException {
        return load(path, true, null);
    }

    /**
     * Load a model.
     *
     * @param useMmap map the file (true) or read it into memory
     * @param listener progress from 0 to 1, may cancel; may be null
     */
    public static Ember load(String path, boolean useMmap, ProgressListener listener)
            throws EmberException {
        return new Ember(nativeLoad(path, useMmap, listener));
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException("the model is closed");
        }
        return handle;
    }

    /** "llama", "qwen2", ... */
    public synchronized String architecture() throws EmberException {
        return nativeString(handle(), 0);
    }

    /** {@code general.name}, or null. */
    public synchronized String name() throws EmberException {
        return nativeString(handle(), 1);
    }

    /** The Jinja chat template stored in the file, or null. */
    public synchronized String chatTemplate() throws EmberException {
        return nativeString(handle(), 2);
    }

    /** Number of weights. */
    public synchronized long parameterCount() throws EmberException {
        return nativeNumber(handle(), 0);
    }

    /** Context length the model was trained with. */
    public synchronized int trainingContextLength() throws EmberException {
        return (int) nativeNumber(handle(), 1);
    }

    public synchronized int vocabularySize() throws EmberException {
        return (int) nativeNumber(handle(), 2);
    }

    public synchronized long fileSize() throws EmberException {
        return nativeNumber(handle(), 3);
    }

    /** Beginning-of-sequence token id, or -1. */
    public synchronized int bosToken() throws EmberException {
        return (int) nativeNumber(handle(), 4);
    }

    /** End-of-sequence token id, or -1. */
    public synchronized int eosToken() throws EmberException {
        return (int) nativeNumber(handle(), 5);
    }

    /**
     * Text to token ids.
     *
     * @param addSpecial add BOS/EOS as the vocabulary asks
     * @param parseSpecial let control tokens written in the text become single tokens
     */
    public synchronized int[] tokenize(String text, boolean addSpecial, boolean parseSpecial)
            throws EmberException {
        return nativeTokenize(handle(), text, addSpecial, parseSpecial);
    }

    /** Token ids to text (special tokens dropped). */
    public synchronized String detokenize(int[] ids) throws EmberException {
        return nativeDetokenize(handle(), ids, false, false);
    }

    /** Render a conversation with the model's chat template; with {@code addGenerationPrompt}
     *  the text ends where the assistant's reply begins. */
    public synchronized String applyChatTemplate(List<ChatMessage> messages,
            boolean addGenerationPrompt) throws EmberException {
        String[] roles = new String[messages.size()];
        String[] contents = new String[messages.size()];
        for (int i = 0; i < roles.length; i++) {
            roles[i] = messages.get(i).role;
            contents[i] = messages.get(i).content;
        }
        return nativeApplyChatTemplate(handle(), roles, contents, addGenerationPrompt);
    }

    /** A new conversation with default options. */
    public EmberSession newSession() throws EmberException {
        return newSession(new SessionOptions());
    }

    public synchronized EmberSession newSession(SessionOptions options) throws EmberException {
        long s = EmberSession.nativeNew(handle(), options.contextLength, options.batchSize,
                options.threads, options.device.code, options.draftMax);
        return new EmberSession(this, s);
    }

    /** Release the model. Idempotent. */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            nativeFree(handle);
            handle = 0;
        }
    }

    private static native String nativeVersion();

    private static native long nativeLoad(String path, boolean useMmap, ProgressListener listener)
            throws EmberException;

    private static native void nativeFree(long handle);

    private static native String nativeString(long handle, int which) throws EmberException;

    private static native long nativeNumber(long handle, int which) throws EmberException;

    private static native int[] nativeTokenize(long handle, String text, boolean addSpecial,
            boolean parseSpecial) throws EmberException;

    private static native String nativeDetokenize(long handle, int[] ids, boolean removeSpecial,
            boolean unparseSpecial) throws EmberException;

    private static native String nativeApplyChatTemplate(long handle, String[] roles,
            String[] contents, boolean addGenerationPrompt) throws EmberException;
}
