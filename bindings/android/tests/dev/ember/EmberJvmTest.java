package dev.ember;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The Java wrapper on the desktop JVM against the host-built libember_jni.so (run by
 * scripts/test_bindings.sh). No test framework: each check prints its name and the run ends
 * with "N passed, M failed".
 *
 * usage: java -Djava.library.path=target/release dev.ember.EmberJvmTest MODEL REFERENCE.txt
 *   REFERENCE.txt: prompt ids, then greedy ids, from the Rust API for PROMPT.
 */
public final class EmberJvmTest {
    static final String PROMPT = "The capital of France is";

    interface Check {
        void run() throws Exception;
    }

    static int passed;
    static int failed;

    static void test(String name, Check check) {
        try {
            check.run();
            passed++;
            System.out.println("test " + name + " ... ok");
        } catch (Throwable t) {
            failed++;
            System.out.println("test " + name + " ... FAILED: " + t);
            t.printStackTrace(System.out);
        }
    }

    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static int expectEmberError(int code, Check body) throws Exception {
        try {
            body.run();
        } catch (EmberException e) {
            check(e.code() == code, "code " + e.code() + " (" + e.getMessage() + "), expected " + code);
            return e.code();
        }
        throw new AssertionError("no EmberException, expected code " + code);
    }

    static int[] parseIds(String line) {
        return Arrays.stream(line.trim().split("\\s+")).mapToInt(Integer::parseInt).toArray();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: EmberJvmTest MODEL REFERENCE.txt");
            System.exit(2);
        }
        String path = args[0];
        List<String> ref = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
        int[] refPrompt = parseIds(ref.get(0));
        int[] refGen = parseIds(ref.get(1));
        int nGen = refGen.length;

        test("version_is_semver", () -> check(Ember.version().matches("\\d+\\.\\d+\\.\\d+.*"), Ember.version()));
        test("missing_file_throws_io", () -> expectEmberError(EmberException.IO, () -> Ember.load("/nonexistent/m.gguf")));
        test("progress_listener_can_cancel_load", () -> {
            List<Float> seen = new ArrayList<>();
            expectEmberError(EmberException.ABORTED, () -> Ember.load(path, false, p -> {
                seen.add(p);
                return p < 0.2f;
            }));
            check(seen.size() >= 2, "progress reported " + seen);
        });

        List<Float> progress = new ArrayList<>();
        Ember model = Ember.load(path, true, p -> progress.add(p));
        test("load_reports_progress", () -> check(progress.get(progress.size() - 1) == 1.0f, progress.toString()));
        test("model_info", () -> {
            check(model.architecture().equals("llama"), model.architecture());
            check(model.vocabularySize() == 49152, "vocab " + model.vocabularySize());
            check(model.trainingContextLength() == 8192, "n_ctx_train");
            check(model.parameterCount() > 100_000_000L, "params");
            check(model.chatTemplate().contains("im_start"), "template");
            check(model.eosToken() >= 0, "eos");
        });
        test("tokenize_matches_rust_api", () -> {
            check(Arrays.equals(model.tokenize(PROMPT, true, true), refPrompt), "ids");
            check(model.detokenize(refPrompt).equals(PROMPT), model.detokenize(refPrompt));
            check(model.tokenize("", true, true).length == 0, "empty");
            // Non-BMP text survives the trip through modified UTF-8.
            String emoji = "fire \uD83D\uDD25 and caf\u00e9";
            check(model.detokenize(model.tokenize(emoji, false, false)).equals(emoji), "emoji");
            expectEmberError(EmberException.INVALID_TOKEN, () -> model.detokenize(new int[] {999999}));
            expectEmberError(EmberException.INVALID_ARGUMENT, () -> model.detokenize(new int[] {-1}));
        });

        SessionOptions small = new SessionOptions().contextLength(64).threads(2);
        test("greedy_generation_matches_rust_api_and_streams", () -> {
            try (EmberSession s = model.newSession(small)) {
                StringBuilder streamed = new StringBuilder();
                AtomicInteger pieces = new AtomicInteger();
                Generation g = s.generate(refPrompt, GenerateOptions.greedy().maxTokens(nGen).ignoreEos(true), t -> {
                    streamed.append(t);
                    pieces.incrementAndGet();
                    return true;
                });
                check(Arrays.equals(g.tokens(), refGen), Arrays.toString(g.tokens()));
                check(g.stopReason() == StopReason.MAX_TOKENS, g.stopReason().toString());
                check(streamed.toString().equals(g.text()), "streamed '" + streamed + "' vs '" + g.text() + "'");
                check(pieces.get() > 1, "pieces");
                check(g.promptTokens() == refPrompt.length, "prompt tokens");
                check(s.tokensInContext() == refPrompt.length + nGen, "n_past " + s.tokensInContext());
                // Text prompts are tokenized like the ids above (BOS-less vocabulary here).
                s.reset();
                Generation g2 = s.generate(PROMPT, GenerateOptions.greedy().maxTokens(nGen).ignoreEos(true), null);
                check(Arrays.equals(g2.tokens(), refGen), "text prompt");
            }
        });
        test("callback_can_stop_and_stop_strings_end_generation", () -> {
            try (EmberSession s = model.newSession(small)) {
                AtomicInteger pieces = new AtomicInteger();
                Generation g = s.generate(refPrompt, GenerateOptions.greedy().maxTokens(nGen).ignoreEos(true),
                        t -> pieces.incrementAndGet() < 2);
                check(g.stopReason() == StopReason.CALLBACK && pieces.get() == 2, g.stopReason().toString());
                s.reset();
                String full = model.detokenize(refGen);
                String stop = full.substring(full.indexOf(' ', 1), full.indexOf(' ', 1) + 4);
                Generation g2 = s.generate(refPrompt,
                        GenerateOptions.greedy().maxTokens(nGen).ignoreEos(true).stop(stop), null);
                check(g2.stopReason() == StopReason.STOP_STRING, g2.stopReason().toString());
                check(g2.text().equals(full.substring(0, full.indexOf(stop))), g2.text());
            }
        });
        test("abort_from_another_thread", () -> {
            try (EmberSession s = model.newSession(new SessionOptions().contextLength(512).threads(2))) {
                CountDownLatch started = new CountDownLatch(2);
                CountDownLatch aborted = new CountDownLatch(1);
                Thread stopper = new Thread(() -> {
                    try {
                        started.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    s.abort();
                    aborted.countDown();
                });
                stopper.start();
                // The second piece waits for the abort, so it lands mid-generation however the
                // threads are scheduled.
                Generation g = s.generate(refPrompt, GenerateOptions.greedy().maxTokens(400).ignoreEos(true), t -> {
                    started.countDown();
                    if (started.getCount() == 0) {
                        try {
                            aborted.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    return true;
                });
                stopper.join();
                check(g.stopReason() == StopReason.ABORTED, g.stopReason().toString());
                check(g.tokens().length < 400, "stopped early");
                // The request was consumed: the next generation runs normally.
                s.reset();
                Generation g2 = s.generate(refPrompt, GenerateOptions.greedy().maxTokens(2), null);
                check(g2.tokens().length == 2, "after abort");
            }
        });
        test("exception_in_callback_propagates", () -> {
            try (EmberSession s = model.newSession(small)) {
                try {
                    s.generate(refPrompt, GenerateOptions.greedy().maxTokens(nGen), t -> {
                        throw new IllegalStateException("from callback");
                    });
                    throw new AssertionError("no exception");
                } catch (IllegalStateException e) {
                    check(e.getMessage().equals("from callback"), e.getMessage());
                }
                s.reset();
                check(s.generate(refPrompt, GenerateOptions.greedy().maxTokens(1), null).tokens().length == 1, "usable");
            }
        });
        test("errors_become_exceptions", () -> {
            try (EmberSession s = model.newSession(new SessionOptions().contextLength(8).threads(1))) {
                // Filling the context while generating ends the generation, keeping its tokens...
                Generation full = s.generate(refPrompt, GenerateOptions.greedy().maxTokens(32).ignoreEos(true), null);
                check(full.stopReason() == StopReason.CONTEXT_FULL, "stop reason " + full.stopReason());
                check(s.tokensInContext() == 8, "n_past " + s.tokensInContext());
                s.reset();
                // ...while a prompt that does not fit is an error.
                expectEmberError(EmberException.CONTEXT_FULL, () ->
                        s.generate(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, GenerateOptions.greedy(), null));
                s.reset();
                expectEmberError(EmberException.INVALID_TOKEN, () -> s.generate(new int[] {5, 999999}, null, null));
                expectEmberError(EmberException.INVALID_ARGUMENT, () ->
                        s.generate(refPrompt, new GenerateOptions().topP(3f), null));
            }
            // Device.GPU works where wgpu finds an adapter (CI: Mesa's lavapipe), else UNSUPPORTED.
            try (EmberSession g = model.newSession(new SessionOptions().device(Device.GPU).contextLength(64))) {
                check(g.tokensInContext() == 0, "fresh GPU session");
            } catch (EmberException e) {
                check(e.code() == EmberException.UNSUPPORTED, "GPU session: " + e);
            }
            expectEmberError(EmberException.INVALID_ARGUMENT, () -> model.newSession(new SessionOptions().batchSize(-1)));
        });
        test("constrained_generation", () -> {
            try (EmberSession s = model.newSession(new SessionOptions().contextLength(256).threads(2))) {
                // Outputs are checked with java.util.regex, independent of ember's engine.
                GenerateOptions phone = GenerateOptions.greedy().maxTokens(24).regex("[0-9]{3}-[0-9]{4}");
                Generation g = s.generate("My phone number is", phone, null);
                check(g.text().matches("[0-9]{3}-[0-9]{4}"), "regex: '" + g.text() + "'");
                check(g.stopReason() == StopReason.END_OF_GENERATION, g.stopReason().toString());
                s.reset();
                // The same options again reuse the compiled constraint, restarted.
                check(s.generate("My phone number is", phone, null).text().equals(g.text()), "reuse");
                s.reset();
                Generation c = s.generate("The sky on a clear day is the color",
                        GenerateOptions.greedy().choices("red", "green", "blue"), null);
                check(List.of("red", "green", "blue").contains(c.text()), "choices: '" + c.text() + "'");
                s.reset();
                String schema = "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\"}},"
                        + "\"required\":[\"age\"],\"additionalProperties\":false}";
                Generation j = s.generate("Alice is 31 years old. As JSON:",
                        GenerateOptions.greedy().maxTokens(24).jsonSchema(schema), null);
                check(j.text().matches("\\{\"age\": -?[0-9]+\\}"), "json: '" + j.text() + "'");
                s.reset();
                expectEmberError(EmberException.INVALID_ARGUMENT, () ->
                        s.generate(refPrompt, GenerateOptions.greedy().jsonSchema("{not json"), null));
                expectEmberError(EmberException.INVALID_ARGUMENT, () ->
                        s.generate(refPrompt, GenerateOptions.greedy().regex("(unclosed"), null));
                expectEmberError(EmberException.INVALID_ARGUMENT, () ->
                        s.generate(refPrompt, GenerateOptions.greedy().choices(), null));
                check(s.tokensInContext() == 0, "nothing evaluated for a bad constraint");
            }
        });
        test("draft_and_consultant", () -> {
            GenerateOptions greedyRef = GenerateOptions.greedy().maxTokens(nGen).ignoreEos(true);
            try (EmberSession s = model.newSession(
                    new SessionOptions().contextLength(64).threads(2).draftMax(4))) {
                // The model drafting for itself: the reference ids, every drafted token accepted.
                s.useDraft(model, 4);
                Generation g = s.generate(refPrompt, greedyRef, null);
                check(Arrays.equals(g.tokens(), refGen), "draft: " + Arrays.toString(g.tokens()));
                check(g.drafted() > 0 && g.draftAccepted() == g.drafted(),
                        "drafted " + g.drafted() + ", accepted " + g.draftAccepted());
                expectEmberError(EmberException.INVALID_ARGUMENT, () -> s.useDraft(model, 8));
                s.useDraft(null, 0);
                s.reset();
                // Never consulting: its own answer and confidence.
                s.useConsultant(model, 0.0);
                Generation own = s.generate(refPrompt, greedyRef, null);
                check(!own.escalated() && own.confidence() > 0 && own.confidence() <= 1,
                        "confidence " + own.confidence());
                check(Arrays.equals(own.tokens(), refGen), "own answer");
                s.reset();
                // Always consulting (here the same model): its answer, streamed whole.
                s.useConsultant(model, 1.5);
                StringBuilder streamed = new StringBuilder();
                AtomicInteger pieces = new AtomicInteger();
                Generation esc = s.generate(refPrompt, greedyRef, t -> {
                    streamed.append(t);
                    pieces.incrementAndGet();
                    return true;
                });
                check(esc.escalated() && esc.confidence() == own.confidence(), "escalated");
                check(esc.text().equals(own.text()) && streamed.toString().equals(esc.text())
                        && pieces.get() == 1, "consultant's answer '" + esc.text() + "'");
                check(s.tokensInContext() == refPrompt.length + esc.tokens().length, "cache");
                s.reset();
                expectEmberError(EmberException.INVALID_ARGUMENT, () ->
                        s.generate(refPrompt, GenerateOptions.greedy().regex("a"), null));
                expectEmberError(EmberException.INVALID_ARGUMENT, () -> s.useConsultant(model, -1));
            }
        });
        test("chat_replies", () -> {
            try (EmberSession s = model.newSession(new SessionOptions().contextLength(256).threads(2))) {
                List<ChatMessage> conv = List.of(ChatMessage.system("Be brief."), ChatMessage.user("What is 2+2?"));
                String rendered = model.applyChatTemplate(conv, true);
                check(rendered.endsWith("<|im_start|>assistant\n"), rendered);
                Generation g = s.chat(conv, GenerateOptions.greedy().maxTokens(8), null);
                check(!g.text().isEmpty(), "reply");
            }
        });
        test("closed_handles_are_refused", () -> {
            EmberSession s = model.newSession(small);
            s.close();
            s.close(); // idempotent
            s.abort(); // harmless after close
            try {
                s.reset();
                throw new AssertionError("reset after close");
            } catch (IllegalStateException expected) {
                // ok
            }
        });

        // A session outlives the model handle it came from.
        EmberSession survivor = model.newSession(small);
        model.close();
        model.close();
        test("session_outlives_model", () -> {
            Generation g = survivor.generate(refPrompt, GenerateOptions.greedy().maxTokens(2), null);
            check(g.tokens().length == 2 && g.tokens()[0] == refGen[0], "generation after model close");
            try {
                model.tokenize("x", false, false);
                throw new AssertionError("tokenize after close");
            } catch (IllegalStateException expected) {
                // ok
            }
        });
        survivor.close();

        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
