package dev.ember;

/** Receives generated text as it becomes ready (whole characters, never part of a stop
 *  string). Called on the thread that called {@code generate}. */
@FunctionalInterface
public interface TokenCallback {
    /** @return true to continue, false to stop generating ({@link StopReason#CALLBACK}). */
    boolean onText(String text);
}
