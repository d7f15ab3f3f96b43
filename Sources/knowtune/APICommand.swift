// Implements `knowtune api`: loads a model (adapters merged), starts the continuous-batching scheduler and serves
// OpenAI-compatible chat completions until SIGINT or SIGTERM (LLaMA-Factory 0.5.3's `api_demo.py`, with the
// predict stage's sampling flags as request defaults). Prints `listening on http://HOST:PORT` to stderr once ready.
import ArgumentParser
import Dispatch
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneServing
import KnowTuneTensor

struct APICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Serve the model as an OpenAI-compatible API (/v1/chat/completions, /v1/models).")

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("template")) var templateName = "alpaca"
    @Option(name: .customLong("host")) var host = "127.0.0.1"
    @Option(name: .customLong("port"), help: "0 picks a free port (printed).") var port = 8000
    @Option(name: .customLong("served_model_name"), help: "The model id clients name (default: the model file or folder name).")
    var servedModelName: String?
    @Option(name: .customLong("max_concurrent"), help: "Sequences decoded together (continuous batching).") var maxConcurrent = 8
    @Option(name: .customLong("max_queue"), help: "Sequences that may wait for a slot; more get HTTP 429.") var maxQueue = 64
    @Option(name: .customLong("context_length"), help: "Positions per sequence, prompt included (default: the model's, at most 4096).")
    var contextLength: Int?
    @Option(name: .customLong("api_key_env"), help: "The environment variable holding the key requests must send as a bearer token (unset or empty: no key).")
    var apiKeyEnvironment = "KNOWTUNE_API_KEY"
    @Option(name: .customLong("do_sample")) var doSample = GeneratingArguments.defaults.doSample
    @Option(name: .customLong("temperature")) var temperature = GeneratingArguments.defaults.temperature
    @Option(name: .customLong("top_p")) var topP = GeneratingArguments.defaults.topP
    @Option(name: .customLong("top_k")) var topK = GeneratingArguments.defaults.topK
    @Option(name: .customLong("max_new_tokens")) var maxNewTokens = GeneratingArguments.defaults.maxNewTokens
    @Option(name: .customLong("repetition_penalty")) var repetitionPenalty = GeneratingArguments.defaults.repetitionPenalty

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard maxConcurrent >= 1, maxQueue >= 1 else { throw ValidationError("--max_concurrent and --max_queue must be at least 1") }
        if let contextLength, contextLength < 2 { throw ValidationError("--context_length must be at least 2") }
        _ = try ChatTemplate.named(templateName)
        try GenerationConfiguration(doSample: doSample, temperature: temperature, topP: topP, topK: topK, maxNewTokens: maxNewTokens,
                                    repetitionPenalty: repetitionPenalty).validate()
    }

    func run() throws {
        try runReportingErrors {
            let loaded = try model.load()
            let context = min(contextLength ?? min(loaded.configuration.maxPositionEmbeddings, 4096),
                              loaded.configuration.maxPositionEmbeddings)
            let served = ServedModel(
                name: servedModelName ?? URL(fileURLWithPath: model.modelPath).deletingPathExtension().lastPathComponent,
                tokenizer: loaded.tokenizer, template: try ChatTemplate.named(templateName),
                vocabularySize: loaded.configuration.vocabularySize, contextLength: context,
                defaults: GenerationConfiguration(doSample: doSample, temperature: temperature, topP: topP, topK: topK,
                                                  maxNewTokens: maxNewTokens, repetitionPenalty: repetitionPenalty))
            let decoder = IncrementalDecoder(weights: loaded.weights, batchCapacity: maxConcurrent, maxLength: context)
            let scheduler = CompletionScheduler(decoder: decoder, stopTokenIds: Set(served.stopTokenIds), contextLength: context,
                                                queueCapacity: maxQueue)
            scheduler.start()
            let service = ChatCompletionService(model: served, scheduler: scheduler)
            let key = ProcessInfo.processInfo.environment[apiKeyEnvironment].flatMap { $0.isEmpty ? nil : $0 }
            let options = APIServerOptions(host: host, port: port, apiKey: key)
            let finished = DispatchSemaphore(value: 0)
            let outcome = ServerOutcome()
            let (host, batch, format) = (host, maxConcurrent, loaded.format)
            Task {
                do {
                    try await APIServer.run(service: service, options: options, handleSignals: true) { port in
                        logToStandardError("listening on http://\(host):\(port)/v1 (model \(served.name) [\(format)], template \(served.template.name), "
                                           + "context \(context), \(batch) sequences per batch, key \(key == nil ? "not required" : "required"))")
                    }
                } catch {
                    outcome.error = error
                }
                finished.signal()
            }
            finished.wait()
            scheduler.shutdown()
            if let error = outcome.error { throw KnowTuneError.invalidConfiguration("the server stopped: \(error)") }
        }
    }
}

/// How the server task ended, read after it signals.
private final class ServerOutcome: @unchecked Sendable {
    var error: Error?
}
