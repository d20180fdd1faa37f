package dev.ember;

/** Model loading progress, on the loading thread. */
@FunctionalInterface
public interface ProgressListener {
    /** @param progress from 0 to 1. @return true to continue, false to cancel the load
     *  (it then fails with {@link EmberException#ABORTED}). */
    boolean onProgress(float progress);
}
