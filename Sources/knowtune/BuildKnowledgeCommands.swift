// Implements `knowtune build-ka` and `knowtune build-kc`: the KnowTuning data sets (KA: original pairs plus
// fine-grained pairs from the hardest facts; KC: [chosen, rejected] pairs for deleted, revised and shuffled facts),
// started alone or under mpirun (records are split over the ranks), resumable, progress and summary on stderr,
// the summary as JSON on stdout; and `knowtune judge`, fact statistics of predictions with the same extractor.
// Does not build or score anything itself (KnowTuneKnowledge does).
import ArgumentParser
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneEvaluation
import KnowTuneKnowledge
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTraining

/// The flags both builders take (LLaMA-Factory spellings).
struct KnowledgeBuildFlags: ParsableArguments {
    @Option(name: .customLong("dataset"), help: "The source dataset's name in dataset_info.json; the result is registered as NAME_KA / NAME_KC.")
    var dataset: String

    @Option(name: .customLong("dataset_dir"), help: "The folder holding dataset_info.json.")
    var datasetDirectory = "data"

    @Option(name: .customLong("model_name_or_path"), help: "The base model being tuned (KA scores fact perplexity with it).")
    var modelPath: String?

    @Option(name: .customLong("base_dtype"), help: ArgumentHelp(BaseDtypeOption.help))
    var baseDtype = "fp32"

    @OptionGroup var teacherOptions: TeacherOptions

    @Option(name: .customLong("seed"), help: "Seeds every random choice (KC deletions, revisions, shuffles).")
    var seed: UInt64 = 42

    @Option(name: .customLong("max_samples"), help: "Use only the first N records of the dataset.")
    var maxSamples: Int?

    @Flag(name: .customLong("overwrite_cache"), help: "Ignore and delete the per-record cache of earlier runs.")
    var overwriteCache = false

    @Option(name: .customLong("records_per_round"), help: "Records each rank builds between two synchronisations (and cache writes).")
    var recordsPerRound = 4

    func validate() throws {
        guard !dataset.isEmpty, !dataset.contains(",") else { throw ValidationError("--dataset takes one dataset name") }
        if let maxSamples, maxSamples < 1 { throw ValidationError("--max_samples must be at least 1") }
        guard recordsPerRound >= 1 else { throw ValidationError("--records_per_round must be at least 1") }
        _ = try BaseDtypeOption.precision(baseDtype, option: "--base_dtype")
    }

    var options: KnowledgeBuildOptions {
        KnowledgeBuildOptions(datasetName: dataset, datasetDirectory: datasetDirectory, maxSamples: maxSamples,
                              overwriteCache: overwriteCache, recordsPerRankPerRound: recordsPerRound)
    }
}

struct BuildKACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-ka",
        abstract: "Build the KnowTuning KA set: the original pairs plus one fine-grained QA pair per question from its hardest facts.",
        discussion: """
            Example: knowtune build-ka --dataset dolly_train --model_name_or_path models/smollm2 --teacher rules
            Writes <dataset folder>/dolly_train_KA.json, registers dolly_train_KA in dataset_info.json, and keeps a \
            per-record cache (dolly_train_KA.cache.jsonl) so an interrupted build continues where it stopped.
            """)

    @OptionGroup var flags: KnowledgeBuildFlags

    @Option(name: .customLong("ka_keep"), help: "\"median\" (facts at or above the answer's median perplexity) or a fraction in (0, 1].")
    var keep = "median"

    func validate() throws {
        _ = try FactKeepRule(parsing: keep)
        guard flags.modelPath != nil else { throw ValidationError("build-ka needs --model_name_or_path (the base model scores the facts)") }
    }

    func run() throws {
        try runKnowledgeBuild(flags: flags, commandName: "build-ka") { source, communicator, logger, progress in
            let rule = try FactKeepRule(parsing: keep)
            // The node-shared base: mapped once per node however many ranks score facts.
            let model = try NodeSharedModel.load(flags.modelPath ?? "", precision: try BaseDtypeOption.precision(flags.baseDtype, option: "--base_dtype"),
                                                 communicator: communicator, logger: logger)
            logger.info("scoring facts with \(model.source) [\(model.format)], template alpaca, keep \(rule)")
            let teacher = try Consensus.runAgreed(communicator: communicator, operation: "start the teacher") {
                try flags.teacherOptions.makeTeacher(entitySource: [])
            }
            let builder = KnowledgeAugmentationBuilder(teacher: teacher, scorer: FactPerplexityScorer(model: model), keep: rule)
            var options = flags.options
            // Records in flight overlap their teacher calls (the scorer takes them one at a time).
            if let prompted = teacher as? PromptedTeacher, prompted.backend.allowsConcurrentCalls {
                options.concurrency = flags.teacherOptions.teacherConcurrency
            }
            return try KnowledgeBuild.augment(records: source.records, source: source.entry, options: options, builder: builder,
                                              communicator: communicator, progress: progress)
        }
    }
}

struct BuildKCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-kc",
        abstract: "Build the KnowTuning KC set: per question [chosen, rejected] pairs for incomplete, non-factual and illogical answers.",
        discussion: """
            Example: knowtune build-kc --dataset dolly_train --teacher rules --seed 42
            Writes <dataset folder>/dolly_train_KC.json and registers dolly_train_KC (\"ranking\": true) in dataset_info.json.
            """)

    @OptionGroup var flags: KnowledgeBuildFlags

    @Option(name: .customLong("kc_delete_ratio"), help: "The share of facts the incomplete answer loses (at least one, order kept).")
    var deleteRatio = 0.5

    func validate() throws {
        guard deleteRatio > 0, deleteRatio < 1 else { throw ValidationError("--kc_delete_ratio must be in (0, 1)") }
    }

    func run() throws {
        try runKnowledgeBuild(flags: flags, commandName: "build-kc") { source, communicator, logger, progress in
            if flags.modelPath != nil { logger.info("--model_name_or_path is not used by build-kc") }
            let teacher = try Consensus.runAgreed(communicator: communicator, operation: "start the teacher") {
                try flags.teacherOptions.makeTeacher(entitySource: source.records)
            }
            var options = flags.options
            if let rules = teacher as? RuleTeacher {
                logger.info("rules teacher: \(rules.falsifier.pool.entries.count) named entities for cross-record swaps")
            } else if let prompted = teacher as? PromptedTeacher, prompted.backend.allowsConcurrentCalls {
                options.concurrency = flags.teacherOptions.teacherConcurrency
            }
            let builder = try KnowledgeComparisonBuilder(teacher: teacher, deleteRatio: deleteRatio, seed: flags.seed)
            return try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                              communicator: communicator, progress: progress)
        }
    }
}

/// The job around a build: MPI start, agreed validation and loading, thread placement, progress, summary, exit.
private func runKnowledgeBuild(
    flags: KnowledgeBuildFlags, commandName: String,
    build: (_ source: (entry: DatasetEntry, records: [SourceRecord]), _ communicator: any Communicator, _ logger: RankLogger,
            _ progress: @escaping KnowledgeBuild.Progress) throws -> KnowledgeBuildSummary
) throws {
    let (communicator, logger) = try startMPIJob()
    do {
        let source = try Consensus.runAgreed(communicator: communicator, operation: "load the dataset") {
            _ = try TeacherKind.named(flags.teacherOptions.teacher)
            return try KnowledgeBuild.loadSource(flags.options)
        }
        let placement = try ThreadPlacement.apply(communicator: communicator)
        logger.info(placement)
        logger.info("\(commandName): \(source.records.count) records of \(flags.dataset) on \(communicator.size) rank(s), teacher \(flags.teacherOptions.teacher)")
        let reporter = ProgressReporter(label: commandName, logger: logger)
        let summary = try build(source, communicator, logger) { done, total, built in reporter.report(done: done, total: total, built: built) }
        if communicator.rank == 0 {
            for line in summary.lines { logger.info(line) }
            print(try summary.json())
        }
        try communicator.finalize()
    } catch {
        Consensus.terminate(after: error, communicator: communicator, logger: logger)
    }
}

/// Rank 0's progress lines: at the start, at most every two seconds, and at the end.
private final class ProgressReporter {
    let label: String
    let logger: RankLogger
    let started = Date()
    var lastReport: Date?

    init(label: String, logger: RankLogger) {
        self.label = label
        self.logger = logger
    }

    func report(done: Int, total: Int, built: Int) {
        let now = Date()
        if let lastReport, done < total, now.timeIntervalSince(lastReport) < 2 { return }
        lastReport = now
        let elapsed = now.timeIntervalSince(started)
        let percent = total > 0 ? 100 * Double(done) / Double(total) : 100
        let width = 24
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var line = String(format: "%@ [%@] %d/%d records (%.0f%%)", label, bar, done, total, percent)
        if built > 0, elapsed > 0 {
            let rate = Double(built) / elapsed
            line += String(format: ", %.2f records/s", rate)
            if done < total { line += String(format: ", ETA %.0f s", Double(total - done) / rate) }
        } else if done > 0, built == 0, done == total {
            line += " (all from the cache)"
        }
        logger.info(line)
    }
}

/// `knowtune judge`: fact-level statistics of a predictions file and, with a chat teacher and `--compare`, the
/// pairwise judge of two prediction files (lives here, with the other KnowTuning-data commands, because it shares
/// their fact extractor and teachers).
struct JudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Fact statistics of predictions; with --compare and --teacher local|openai, a pairwise judge of two prediction files.",
        discussion: """
            Facts come from the rules extractor of build-ka/build-kc. A predicted fact is supported when one reference \
            fact holds at least --support_threshold of its content words (lowercased, stop words removed, Porter-stemmed). \
            With --compare B.jsonl and a chat teacher, every record is judged on completeness, factuality and logicality \
            in both answer orders (data/prompts/judge_pairwise.txt); the counts are win/tie/lose of the first file. \
            --dataset gives the judge the questions (the records predict wrote, in order). Prints one JSON object on stdout.
            """)

    @Argument(help: "A generated_predictions.jsonl file ({\"label\": …, \"predict\": …} per line).") var path: String

    @Option(name: .customLong("compare"), help: "A second predictions file for the same questions: judge the first against it.")
    var comparedPath: String?

    @Option(name: .customLong("dataset"), help: "The dataset the predictions answer (their questions, for the pairwise judge).")
    var dataset: String?

    @Option(name: .customLong("dataset_dir"), help: "The folder holding dataset_info.json.")
    var datasetDirectory = "data"

    @Option(name: .customLong("support_threshold"), help: "Share of a predicted fact's content words one reference fact must hold.")
    var threshold = 0.5

    @OptionGroup var teacherOptions: TeacherOptions

    func validate() throws {
        guard threshold > 0, threshold <= 1 else { throw ValidationError("--support_threshold must be in (0, 1]") }
        if comparedPath != nil, try TeacherKind.named(teacherOptions.teacher) == .rules {
            throw ValidationError("--compare needs a chat teacher: --teacher local or --teacher openai")
        }
    }

    func run() throws {
        do {
            let file = try readPredictions(path)
            let statistics = FactStatistics.evaluate(file.records.map { ($0.predict, $0.label) }, threshold: threshold)
            logToStandardError(String(format: "%d records: %.2f facts per prediction, %.2f per reference; %.1f%% of predicted facts supported",
                                      statistics.records, statistics.predictedFactsPerAnswer.mean, statistics.referenceFactsPerAnswer.mean,
                                      100 * statistics.supportedShare))
            guard let comparedPath else {
                print(try statistics.json())
                return
            }
            let other = try readPredictions(comparedPath)
            guard other.records.count == file.records.count, zip(file.records, other.records).allSatisfy({ $0.label == $1.label }) else {
                throw KnowTuneError.invalidInput("\(path) and \(comparedPath) do not answer the same questions (their labels differ)")
            }
            let questions = try datasetQuestions(count: file.records.count)
            let items = file.records.indices.map { i in
                (question: questions?[i] ?? "", reference: file.records[i].label, first: file.records[i].predict, second: other.records[i].predict)
            }
            let judge = try PairwiseJudge(backend: try teacherOptions.makeBackend(), promptsDirectory: teacherOptions.promptsDirectory)
            let tally = try judge.judge(items) { done in
                if done == items.count || done % 10 == 0 { logToStandardError("judge: \(done)/\(items.count) records") }
            }
            for aspect in PairwiseJudge.Aspect.allCases {
                let counts = tally.counts[aspect.rawValue] ?? [:]
                logToStandardError("\(aspect.rawValue): win \(counts["win"] ?? 0), tie \(counts["tie"] ?? 0), lose \(counts["lose"] ?? 0)")
            }
            let object: [String: Any] = ["facts": try JSONSerialization.jsonObject(with: Data(try statistics.json().utf8)),
                                         "pairwise": tally.counts, "unusable_replies": tally.unusableReplies, "judge": judge.backend.identity]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } catch {
            logToStandardError("knowtune: error: \(error)")
            throw ExitCode(1)
        }
    }

    private func readPredictions(_ path: String) throws -> PredictionFile {
        let file = try PredictionFile(contentsOf: URL(fileURLWithPath: path))
        if file.skippedLineCount > 0 { logToStandardError("knowtune: warning: skipped \(file.skippedLineCount) bad line(s) in \(path)") }
        return file
    }

    /// The first `count` questions of `--dataset` (instruction + input, as the template shows them).
    private func datasetQuestions(count: Int) throws -> [String]? {
        guard let dataset else { return nil }
        let source = try KnowledgeBuild.loadSource(KnowledgeBuildOptions(datasetName: dataset, datasetDirectory: datasetDirectory,
                                                                         maxSamples: count))
        guard source.records.count == count else {
            throw KnowTuneError.invalidInput("\(dataset) has \(source.records.count) records, the predictions \(count)")
        }
        return source.records.map { $0.input.isEmpty ? $0.instruction : $0.instruction + "\n" + $0.input }
    }
}
