package dev.ember;

/** How to size a session; the defaults are those of the C API. Setters chain:
 *  {@code new SessionOptions().contextLength(2048).threads(4)}. */
public final class SessionOptions {
    int contextLength = 4096;
    int batchSize = 256;
    int threads = 0;
    Device device = Device.AUTO;
    int draftMax = 0;

    /** Context length in tokens; 0 means the model's training context. */
    public SessionOptions contextLength(int tokens) {
        this.contextLength = tokens;
        return this;
    }

    /** Most prompt tokens per forward pass. */
    public SessionOptions batchSize(int tokens) {
        this.batchSize = tokens;
        return this;
    }

    /** Worker threads including the caller's; 0 means one per core. */
    public SessionOptions threads(int threads) {
        this.threads = threads;
        return this;
    }

    public SessionOptions device(Device device) {
        this.device = device;
        return this;
    }

    /** Most tokens a draft ({@link EmberSession#useDraft}) may propose per step; each forward
     *  pass then scores {@code tokens + 1} positions. 0 (the default): no draft. */
    public SessionOptions draftMax(int tokens) {
        this.draftMax = tokens;
        return this;
    }
}
