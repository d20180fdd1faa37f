package dev.ember;

/** One message of a conversation. */
public final class ChatMessage {
    public final String role;
    public final String content;

    /** @param role "system", "user" or "assistant". */
    public ChatMessage(String role, String content) {
        this.role = role;
        this.content = content;
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
