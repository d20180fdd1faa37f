package dev.ember;

/** Where a session computes. Only the CPU exists in this version: GPU fails with
 *  {@link EmberException#UNSUPPORTED}. */
public enum Device {
    AUTO(0),
    CPU(1),
    GPU(2);

    final int code;

    Device(int code) {
        this.code = code;
    }
}
