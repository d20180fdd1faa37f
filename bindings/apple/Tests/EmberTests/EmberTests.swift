// Runs on macOS after build_xcframework.sh:
//   EMBER_TEST_MODEL=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf swift test
import XCTest

@testable import Ember

final class EmberTests: XCTestCase {
    func modelPath() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["EMBER_TEST_MODEL"] else {
            throw XCTSkip("set EMBER_TEST_MODEL to a GGUF file (SmolLM2-135M-Instruct.Q4_1)")
        }
        return path
    }

    func testMissingFileThrowsIOError() {
        XCTAssertThrowsError(try EmberModel(path: "/nonexistent/model.gguf")) { error in
            XCTAssertEqual((error as? EmberError)?.code, EmberError.io)
        }
    }

    func testGreedyGenerationStreamsItsText() throws {
        let model = try EmberModel(path: try modelPath())
        XCTAssertEqual(model.architecture, "llama")
        let session = try EmberSession(model: model, contextLength: 128, threads: 2)
        let ids = try model.tokenize("The capital of France is")
        var streamed = ""
        var options = GenerateOptions.greedy
        options.maxTokens = 8
        options.ignoreEos = true
        let g = try session.generate(prompt: ids, options: options) { piece in
            streamed += piece
            return true
        }
        XCTAssertEqual(g.tokens.count, 8)
        XCTAssertEqual(streamed, g.text)
        XCTAssertEqual(try model.detokenize(g.tokens), g.text)
    }

    func testAsyncStreamMatchesBlockingGeneration() async throws {
        let model = try EmberModel(path: try modelPath())
        var options = GenerateOptions.greedy
        options.maxTokens = 8
        options.ignoreEos = true
        let blocking = try EmberSession(model: model, contextLength: 128)
            .generate(prompt: try model.tokenize("Hello"), options: options)
        var text = ""
        for try await piece in try EmberSession(model: model, contextLength: 128)
            .tokens(prompt: "Hello", options: options)
        {
            text += piece
        }
        XCTAssertEqual(text, blocking.text)
    }

    func testChatReply() async throws {
        let model = try EmberModel(path: try modelPath())
        let session = try EmberSession(model: model, contextLength: 256)
        var options = GenerateOptions.greedy
        options.maxTokens = 8
        var reply = ""
        for try await piece in session.reply(
            to: [ChatMessage(role: "user", content: "What is 2+2?")], options: options)
        {
            reply += piece
        }
        XCTAssertFalse(reply.isEmpty)
    }
}
