package dev.ember;

/** An ember failure, with the same status code as the C API ({@code EMBER_ERR_*} in ember.h). */
public class EmberException extends Exception {
    private static final long serialVersionUID = 1L;

    public static final int INVALID_ARGUMENT = 1;
    public static final int NULL_POINTER = 2;
    public static final int BUFFER_TOO_SMALL = 3;
    public static final int IO = 4;
    public static final int INVALID_MODEL = 5;
    public static final int UNSUPPORTED = 6;
    public static final int TOKENIZER = 7;
    public static final int INVALID_TOKEN = 8;
    public static final int CONTEXT_FULL = 9;
    public static final int TEMPLATE = 10;
    public static final int ABORTED = 11;
    public static final int BUSY = 12;
    public static final int KERNEL = 13;
    public static final int NOT_FOUND = 14;
    public static final int INTERNAL = 15;
    public static final int CONSULTANT = 16;

    private final int code;

    /** Called from native code. */
    public EmberException(int code, String message) {
        super(message);
        this.code = code;
    }

    /** One of the constants above. */
    public int code() {
        return code;
    }
}
