// Implements the teacher flags every KnowTuning-data command shares (build-ka, build-kc, judge): which teacher,
// its model or endpoint, prompts and retry policy, and turning them into a Teacher or a ChatBackend.
import ArgumentParser
import Foundation
import KnowTuneKnowledge
import KnowTuneModel
import KnowTuneTensor

struct TeacherOptions: ParsableArguments {
    @Option(name: .customLong("teacher"), help: "rules (deterministic, no model), local (a model KnowTune loads, greedy) or openai (an OpenAI-compatible server).")
    var teacher = "rules"

    @Option(name: .customLong("teacher_model"), help: "--teacher local: the model to prompt (default: models/smollm2, SmolLM2-135M-Instruct).")
    var teacherModelPath = "models/smollm2"

    @Option(name: .customLong("teacher_base_dtype"), help: "--teacher local: the teacher's base precision (as --base_dtype; q4_k lets a 7B teacher fit beside training).")
    var teacherBaseDtype = "fp32"

    @Option(name: .customLong("teacher_template"), help: "--teacher local: the teacher model's chat template.")
    var teacherTemplate = "chatml"

    @Option(name: .customLong("teacher_max_new_tokens"), help: "--teacher local|openai: the longest reply, in tokens (openai: sent as max_tokens).")
    var teacherMaxNewTokens = 512

    @Option(name: .customLong("openai_base_url"), help: "--teacher openai: the API root; requests go to <url>/chat/completions.")
    var openAIBaseURL = "http://127.0.0.1:8000/v1"

    @Option(name: .customLong("openai_model"), help: "--teacher openai: the model name the server expects.")
    var openAIModel: String?

    @Option(name: .customLong("openai_api_key_env"), help: "--teacher openai: the environment variable holding the API key (unset: no key).")
    var openAIKeyVariable = "OPENAI_API_KEY"

    @Option(name: .customLong("openai_response_format"), help: "--teacher openai: json_schema (ask for the reply's JSON schema as response_format: knowtune api, vLLM, llama.cpp) or none (the prompt alone asks for JSON).")
    var openAIResponseFormat = "json_schema"

    @Option(name: .customLong("prompts_dir"), help: "--teacher openai|local: the folder of the editable prompt files.")
    var promptsDirectory = "data/prompts"

    @Option(name: .customLong("teacher_retries"), help: "Retries of a failed request or unusable reply (then: a reply is skipped and counted, a request stops the build).")
    var teacherRetries = 3

    @Option(name: .customLong("teacher_backoff"), help: "Seconds before the first retry; doubled for each further one.")
    var teacherBackoff = 1.0

    @Option(name: .customLong("teacher_timeout"), help: "Seconds one teacher request may take.")
    var teacherTimeout = 120.0

    @Option(name: .customLong("teacher_max_reply_bytes"), help: "--teacher openai: the largest reply body read; a longer one stops the build (partial results are kept).")
    var teacherMaxReplyBytes = ChatEndpoint.defaultMaxReplyBytes

    @Option(name: .customLong("teacher_concurrency"), help: "Teacher requests in flight per rank (openai: concurrent HTTP requests; local: replies decoded together in one batch).")
    var teacherConcurrency = 4

    func validate() throws {
        _ = try BaseDtypeOption.precision(teacherBaseDtype, option: "--teacher_base_dtype")
        guard teacherRetries >= 0, teacherBackoff >= 0, teacherTimeout > 0, teacherConcurrency >= 1, teacherMaxNewTokens >= 1,
              teacherMaxReplyBytes >= 1024 else {
            throw ValidationError("--teacher_retries and --teacher_backoff must be ≥ 0, --teacher_timeout > 0, --teacher_concurrency and --teacher_max_new_tokens ≥ 1, --teacher_max_reply_bytes ≥ 1024")
        }
        if try TeacherKind.named(teacher) == .openai {
            guard openAIModel != nil else { throw ValidationError("--teacher openai needs --openai_model") }
            guard ["json_schema", "none"].contains(openAIResponseFormat) else {
                throw ValidationError("--openai_response_format \(openAIResponseFormat) is not supported (json_schema, none)")
            }
            guard let url = URL(string: openAIBaseURL), ["http", "https"].contains(url.scheme ?? "") else {
                throw ValidationError("--openai_base_url \(openAIBaseURL) is not an http(s) URL")
            }
        }
    }

    /// The chat model behind `--teacher local|openai`.
    func makeBackend() throws -> any ChatBackend {
        switch try TeacherKind.named(teacher) {
        case .rules:
            throw KnowTuneError.invalidConfiguration("--teacher rules has no chat model; use --teacher local or openai")
        case .openai:
            guard let url = URL(string: openAIBaseURL), let model = openAIModel else {
                throw KnowTuneError.invalidConfiguration("--teacher openai needs --openai_base_url and --openai_model")
            }
            let key = ProcessInfo.processInfo.environment[openAIKeyVariable]
            return OpenAIChatBackend(endpoint: ChatEndpoint(baseURL: url, model: model, apiKey: key, attempts: teacherRetries + 1,
                                                            backoff: teacherBackoff, timeout: teacherTimeout, maxTokens: teacherMaxNewTokens,
                                                            maxReplyBytes: teacherMaxReplyBytes,
                                                            sendsResponseFormat: openAIResponseFormat == "json_schema"))
        case .local:
            let precision = try BaseDtypeOption.precision(teacherBaseDtype, option: "--teacher_base_dtype")
            return try LocalChatBackend(model: try ModelLoader.load(teacherModelPath, precision: precision), templateName: teacherTemplate,
                                        maxNewTokens: teacherMaxNewTokens, concurrency: teacherConcurrency)
        }
    }

    /// The teacher `--teacher` names; the rules teacher swaps entities among `records` (empty: no swaps).
    func makeTeacher(entitySource records: [SourceRecord]) throws -> any Teacher {
        if try TeacherKind.named(teacher) == .rules {
            return records.isEmpty ? RuleTeacher() : RuleTeacher(records: records)
        }
        return PromptedTeacher(backend: try makeBackend(), prompts: try TeacherPrompts(directory: promptsDirectory))
    }
}
