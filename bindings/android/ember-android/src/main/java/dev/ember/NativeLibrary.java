package dev.ember;

/** Loads the JNI library once: {@code libember_jni.so} from the app's jniLibs (Android) or
 *  {@code java.library.path} (desktop), or the file named by the system property
 *  {@code ember.library}. */
final class NativeLibrary {
    private static boolean loaded;

    private NativeLibrary() {}

    static synchronized void load() {
        if (loaded) {
            return;
        }
        String explicit = System.getProperty("ember.library");
        if (explicit != null && !explicit.isEmpty()) {
            System.load(explicit);
        } else {
            System.loadLibrary("ember_jni");
        }
        loaded = true;
    }
}
