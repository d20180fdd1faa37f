// Swift API over ember's C API (module EmberFFI = include/ember.h).
//
//     let model = try EmberModel(path: modelURL.path)
//     let session = try EmberSession(model: model, contextLength: 2048)
//     for try await piece in session.reply(to: [ChatMessage(role: "user", content: "Hi!")]) {
//         print(piece, terminator: "")
//     }
//
// Thread safety follows ember.h: a model may be shared by any number of threads; a session
// runs one generation at a time (a second concurrent call throws EmberError with code
// EMBER_ERR_BUSY); `abort()` may be called from anywhere.

import EmberFFI
import Foundation

/// An ember failure: a status code from ember.h (`EMBER_ERR_*`) and its message.
public struct EmberError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let message: String

    public var description: String { "ember error \(code): \(message)" }

    public static let invalidArgument = EMBER_ERR_INVALID_ARGUMENT
    public static let nullPointer = EMBER_ERR_NULL_POINTER
    public static let bufferTooSmall = EMBER_ERR_BUFFER_TOO_SMALL
    public static let io = EMBER_ERR_IO
    public static let invalidModel = EMBER_ERR_INVALID_MODEL
    public static let unsupported = EMBER_ERR_UNSUPPORTED
    public static let tokenizer = EMBER_ERR_TOKENIZER
    public static let invalidToken = EMBER_ERR_INVALID_TOKEN
    public static let contextFull = EMBER_ERR_CONTEXT_FULL
    public static let template = EMBER_ERR_TEMPLATE
    public static let aborted = EMBER_ERR_ABORTED
    public static let busy = EMBER_ERR_BUSY
    public static let kernel = EMBER_ERR_KERNEL
    public static let notFound = EMBER_ERR_NOT_FOUND
    public static let internalError = EMBER_ERR_INTERNAL
}

/// Throw the calling thread's ember error if `status` is not EMBER_OK.
@inline(__always)
func check(_ status: ember_status_t) throws {
    guard status == EMBER_OK else {
        throw EmberError(code: status, message: String(cString: ember_last_error()))
    }
}

/// The size-query-then-fill pattern of ember.h's string outputs.
func copyString(
    _ call: (UnsafeMutablePointer<CChar>?, Int, UnsafeMutablePointer<Int>) -> ember_status_t
) throws -> String {
    var len = 0
    let first = call(nil, 0, &len)
    if first != EMBER_ERR_BUFFER_TOO_SMALL {
        try check(first)
    }
    var buf = [CChar](repeating: 0, count: len + 1)
    try buf.withUnsafeMutableBufferPointer { p in
        try check(call(p.baseAddress, p.count, &len))
    }
    return String(decoding: buf[..<len].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The library version, "MAJOR.MINOR.PATCH".
public var emberVersion: String { String(cString: ember_version()) }

/// Where a session computes. Only the CPU exists in this version.
public enum Device: Int32, Sendable {
    case auto = 0
    case cpu = 1
    case gpu = 2
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Why a generation ended (EMBER_STOP_*).
public enum StopReason: Int32, Sendable {
    case maxTokens = 0
    case endOfGeneration = 1
    case stopString = 2
    case callback = 3
    case aborted = 4
}

/// Sampler settings and stop conditions; the defaults are llama.cpp's.
public struct GenerateOptions: Sendable {
    public var maxTokens = 128
    /// 0 means greedy.
    public var temperature: Float = 0.8
    public var topK = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repeatPenalty: Float = 1.0
    public var penaltyLastN = 64
    public var seed: UInt64 = 0x5EED
    /// Stop as soon as the text contains one of these (not included in the text).
    public var stop: [String] = []
    public var ignoreEos = false

    public init() {}

    /// Always the most likely token: deterministic output.
    public static var greedy: GenerateOptions {
        var o = GenerateOptions()
        o.temperature = 0
        return o
    }
}

/// What one generation produced.
public struct Generation: Sendable {
    public let tokens: [UInt32]
    public let text: String
    public let stopReason: StopReason
    public let promptTokens: Int
    public let promptMilliseconds: Double
    public let generateMilliseconds: Double
}

/// A loaded GGUF model. Immutable and thread-safe.
public final class EmberModel: @unchecked Sendable {
    let handle: OpaquePointer

    private final class ProgressBox {
        let fn: (Float) -> Bool
        init(_ fn: @escaping (Float) -> Bool) { self.fn = fn }
    }

    /// Load a model file. `progress` gets values from 0 to 1 on this thread and may return
    /// false to cancel (the error is then `EmberError.aborted`).
    public init(path: String, useMmap: Bool = true, progress: ((Float) -> Bool)? = nil) throws {
        var params = ember_model_default_params()
        params.use_mmap = useMmap
        var out: OpaquePointer?
        let status: ember_status_t
        if let progress {
            let box = ProgressBox(progress)
            params.progress_user_data = Unmanaged.passUnretained(box).toOpaque()
            params.progress_callback = { p, userData in
                Unmanaged<ProgressBox>.fromOpaque(userData!).takeUnretainedValue().fn(p)
            }
            status = withExtendedLifetime(box) { ember_model_load(path, &params, &out) }
        } else {
            status = ember_model_load(path, &params, &out)
        }
        try check(status)
        handle = out!
    }

    deinit {
        ember_model_free(handle)
    }

    /// "llama", "qwen2", ...
    public var architecture: String {
        (try? copyString { ember_model_architecture(handle, $0, $1, $2) }) ?? ""
    }

    /// `general.name`, if the file has one.
    public var name: String? { try? copyString { ember_model_name(handle, $0, $1, $2) } }

    /// The Jinja chat template stored in the file, if any.
    public var chatTemplate: String? {
        try? copyString { ember_model_chat_template(handle, $0, $1, $2) }
    }

    public var parameterCount: UInt64 { ember_model_n_params(handle) }
    public var vocabularySize: Int { Int(ember_model_n_vocab(handle)) }
    public var trainingContextLength: Int { Int(ember_model_n_ctx_train(handle)) }

    /// Text to token ids. `addSpecial` adds BOS/EOS as the vocabulary asks; `parseSpecial`
    /// lets control tokens written in the text become single tokens.
    public func tokenize(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) throws
        -> [UInt32]
    {
        let len = text.utf8.count
        return try text.withCString { cText -> [UInt32] in
            var n = 0
            let first = ember_tokenize(handle, cText, len, addSpecial, parseSpecial, nil, 0, &n)
            if first != EMBER_ERR_BUFFER_TOO_SMALL {
                try check(first)
            }
            if n == 0 {
                return []
            }
            var ids = [UInt32](repeating: 0, count: n)
            try check(ember_tokenize(handle, cText, len, addSpecial, parseSpecial, &ids, n, &n))
            return ids
        }
    }

    /// Token ids to text (special tokens dropped).
    public func detokenize(_ tokens: [UInt32]) throws -> String {
        try tokens.withUnsafeBufferPointer { t in
            try copyString {
                ember_detokenize(handle, t.baseAddress, t.count, false, false, $0, $1, $2)
            }
        }
    }

    /// Render a conversation with the model's chat template; with `addGenerationPrompt` the
    /// text ends where the assistant's reply begins.
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = true)
        throws -> String
    {
        var template: OpaquePointer?
        try check(ember_chat_template_from_model(handle, &template))
        defer { ember_chat_template_free(template) }
        let strings = messages.flatMap { [strdup($0.role), strdup($0.content)] }
        defer { strings.forEach { free($0) } }
        let cMessages = (0..<messages.count).map { i in
            ember_chat_message_t(
                role: UnsafePointer(strings[2 * i]), content: UnsafePointer(strings[2 * i + 1]))
        }
        return try cMessages.withUnsafeBufferPointer { m in
            try copyString {
                ember_chat_template_render(
                    template, m.baseAddress, m.count, addGenerationPrompt, $0, $1, $2)
            }
        }
    }
}

/// One conversation (a KV cache) over a model.
public final class EmberSession: @unchecked Sendable {
    let handle: OpaquePointer
    public let model: EmberModel
    /// Runs the blocking generations of the async API, one at a time.
    private let queue = DispatchQueue(label: "dev.ember.session")

    private final class TextBox {
        let user: ((String) -> Bool)?
        var streamed = ""
        init(_ user: ((String) -> Bool)?) { self.user = user }
    }

    /// - Parameters:
    ///   - contextLength: tokens; 0 means the model's training context.
    ///   - threads: worker threads; 0 means one per core.
    public init(
        model: EmberModel, contextLength: Int = 4096, threads: Int = 0, device: Device = .auto
    ) throws {
        var params = ember_session_default_params()
        params.n_ctx = UInt32(clamping: contextLength)
        params.n_threads = UInt32(clamping: threads)
        params.device = device.rawValue
        var out: OpaquePointer?
        try check(ember_session_new(model.handle, &params, &out))
        handle = out!
        self.model = model
    }

    deinit {
        ember_session_free(handle)
    }

    /// Tokens in the KV cache (as of the last finished call).
    public var tokensInContext: Int { Int(ember_session_n_past(handle)) }
    public var contextLength: Int { Int(ember_session_n_ctx(handle)) }

    /// Forget the conversation.
    public func reset() throws {
        try check(ember_session_reset(handle))
    }

    /// Stop the running generation after the current token. Any thread.
    public func abort() {
        _ = ember_session_abort(handle)
    }

    /// Continue the conversation with `prompt` ids and generate, blocking. `onText` receives
    /// the text as it is generated (on this thread) and may return false to stop.
    public func generate(
        prompt: [UInt32], options: GenerateOptions = GenerateOptions(),
        onText: ((String) -> Bool)? = nil
    ) throws -> Generation {
        var sp = ember_sampler_default_params()
        sp.temperature = options.temperature
        sp.top_k = UInt32(clamping: options.topK)
        sp.top_p = options.topP
        sp.min_p = options.minP
        sp.repeat_penalty = options.repeatPenalty
        sp.penalty_last_n = UInt32(clamping: options.penaltyLastN)
        sp.seed = options.seed
        var sampler: OpaquePointer?
        try check(ember_sampler_new(&sp, ember_model_n_vocab(model.handle), &sampler))
        defer { ember_sampler_free(sampler) }

        let stops = options.stop.map { strdup($0) }
        defer { stops.forEach { free($0) } }
        let stopPointers: [UnsafePointer<CChar>?] = stops.map { UnsafePointer($0) }

        var gp = ember_generate_default_params()
        gp.max_tokens = UInt32(clamping: options.maxTokens)
        gp.ignore_eos = options.ignoreEos
        gp.n_stop = stopPointers.count
        let box = TextBox(onText)
        gp.user_data = Unmanaged.passUnretained(box).toOpaque()
        gp.on_text = { text, _, userData in
            let box = Unmanaged<TextBox>.fromOpaque(userData!).takeUnretainedValue()
            let piece = String(cString: text!)
            box.streamed += piece
            return box.user?(piece) ?? true
        }

        var tokens = [UInt32](repeating: 0, count: max(options.maxTokens, 1))
        // Generous for the text; if it is still cut, the streamed text is used instead.
        var textBuffer = [CChar](repeating: 0, count: max(options.maxTokens, 1) * 64 + 1)
        var result = ember_generation_t()
        let status: ember_status_t = stopPointers.withUnsafeBufferPointer { s -> ember_status_t in
            tokens.withUnsafeMutableBufferPointer { t -> ember_status_t in
                textBuffer.withUnsafeMutableBufferPointer { b -> ember_status_t in
                    prompt.withUnsafeBufferPointer { p -> ember_status_t in
                        gp.stop = s.baseAddress
                        result.tokens = t.baseAddress
                        result.tokens_capacity = t.count
                        result.text = b.baseAddress
                        result.text_capacity = b.count
                        return withExtendedLifetime(box) {
                            ember_generate(handle, sampler, p.baseAddress, p.count, &gp, &result)
                        }
                    }
                }
            }
        }
        try check(status)
        let text: String
        if result.text_len < textBuffer.count {
            text = String(
                decoding: textBuffer[..<result.text_len].map { UInt8(bitPattern: $0) },
                as: UTF8.self)
        } else {
            text = box.streamed
        }
        return Generation(
            tokens: Array(tokens.prefix(result.n_tokens)),
            text: text,
            stopReason: StopReason(rawValue: result.stop_reason) ?? .maxTokens,
            promptTokens: result.n_prompt_eval,
            promptMilliseconds: result.prompt_ms,
            generateMilliseconds: result.generate_ms)
    }

    /// Generate on a background queue and stream the text pieces. Cancelling the consuming
    /// task aborts the generation.
    public func tokens(prompt: [UInt32], options: GenerateOptions = GenerateOptions())
        -> AsyncThrowingStream<String, Error>
    {
        stream(prompt: prompt, options: options, resetFirst: false)
    }

    /// Stream the continuation of `prompt` text (BOS is added if the session is empty).
    public func tokens(prompt: String, options: GenerateOptions = GenerateOptions())
        -> AsyncThrowingStream<String, Error>
    {
        do {
            let ids = try model.tokenize(prompt, addSpecial: tokensInContext == 0)
            return stream(prompt: ids, options: options, resetFirst: false)
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
    }

    /// Stream the assistant's reply to a conversation: renders it with the model's chat
    /// template and starts the session afresh.
    public func reply(to messages: [ChatMessage], options: GenerateOptions = GenerateOptions())
        -> AsyncThrowingStream<String, Error>
    {
        do {
            let prompt = try model.applyChatTemplate(messages, addGenerationPrompt: true)
            let ids = try model.tokenize(prompt, addSpecial: false)
            return stream(prompt: ids, options: options, resetFirst: true)
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
    }

    private func stream(prompt: [UInt32], options: GenerateOptions, resetFirst: Bool)
        -> AsyncThrowingStream<String, Error>
    {
        AsyncThrowingStream { continuation in
            continuation.onTermination = { [weak self] termination in
                if case .cancelled = termination {
                    self?.abort()
                }
            }
            // On the session's queue, so that streams started one after another run in order
            // instead of failing with EMBER_ERR_BUSY.
            queue.async {
                do {
                    if resetFirst {
                        try self.reset()
                    }
                    _ = try self.generate(prompt: prompt, options: options) { piece in
                        continuation.yield(piece)
                        return true
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }
}
