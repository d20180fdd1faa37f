package dev.ember;

/** Where a session computes. AUTO: the GPU (Vulkan) if the device has one, else the CPU. GPU
 *  fails with {@link EmberException#UNSUPPORTED} when no adapter is found. */
public enum Device {
    AUTO(0),
    CPU(1),
    GPU(2);

    final int code;

    Device(int code) {
        this.code = code;
    }
}
