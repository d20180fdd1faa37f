import dev.ember.ChatMessage;
import dev.ember.Ember;
import dev.ember.EmberException;
import dev.ember.EmberSession;
import dev.ember.GenerateOptions;
import dev.ember.Generation;
import dev.ember.SessionOptions;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A streaming chat on the desktop JVM with the ember Java classes (the same ones Android uses).
 *
 * <pre>
 *   cargo build --release -p ember-jni
 *   javac -d /tmp/ember-java $(find bindings/android/ember-android/src/main/java -name '*.java') examples/java/Chat.java
 *   java -Djava.library.path=target/release -cp /tmp/ember-java Chat models/SmolLM2-135M-Instruct.Q4_1.gguf
 * </pre>
 */
public final class Chat {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Chat MODEL.gguf [max_tokens]");
            System.exit(2);
        }
        int maxTokens = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (Ember model = Ember.load(args[0]);
                EmberSession session = model.newSession(new SessionOptions().contextLength(2048))) {
            System.err.println("ember " + Ember.version() + ", " + model.name() + ": empty line to quit");
            List<ChatMessage> conversation = new ArrayList<>();
            while (true) {
                System.err.print("you> ");
                String line = in.readLine();
                if (line == null || line.isEmpty()) {
                    break;
                }
                conversation.add(ChatMessage.user(line));
                System.out.print("assistant> ");
                Generation reply = session.chat(conversation, GenerateOptions.greedy().maxTokens(maxTokens), text -> {
                    System.out.print(text);
                    System.out.flush();
                    return true; // false stops the reply
                });
                System.out.println();
                System.err.printf("[%d tokens, %.1f tok/s]%n", reply.tokens().length, reply.tokensPerSecond());
                conversation.add(ChatMessage.assistant(reply.text()));
            }
        } catch (EmberException e) {
            System.err.println("error " + e.code() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
