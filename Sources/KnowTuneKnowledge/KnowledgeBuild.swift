// Implements a KA or KC build as a job: load the source dataset (every rank), skip the records the cache already
// holds, build the rest in rounds (each rank takes every size-th pending record, results gathered after each
// round and appended to the cache by rank 0), then rank 0 writes the dataset, registers it and writes the summary.
// Does not parse flags or start MPI (the CLI does) and does not know how a record is built (the builders do).
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneTensor

/// The settings of a build that are not the builder's own.
public struct KnowledgeBuildOptions: Sendable {
    /// The source dataset's name in `dataset_info.json`; the result is registered as `<name>_KA` / `<name>_KC`.
    public var datasetName: String
    public var datasetDirectory: String
    /// Only the first `maxSamples` records (LLaMA-Factory order).
    public var maxSamples: Int?
    /// Drop the cache and build every record again.
    public var overwriteCache: Bool
    /// Records each rank builds between two gathers; smaller loses less work when killed, larger syncs less.
    public var recordsPerRankPerRound: Int
    /// Records a rank builds at the same time (threads), for teachers that wait on a server; 1 for anything
    /// that is not thread-safe (the model scorer of KA).
    public var concurrency: Int

    public init(datasetName: String, datasetDirectory: String = "data", maxSamples: Int? = nil, overwriteCache: Bool = false,
                recordsPerRankPerRound: Int = 4, concurrency: Int = 1) {
        self.datasetName = datasetName
        self.datasetDirectory = datasetDirectory
        self.maxSamples = maxSamples
        self.overwriteCache = overwriteCache
        self.recordsPerRankPerRound = recordsPerRankPerRound
        self.concurrency = concurrency
    }
}

/// KA or KC.
public enum KnowledgeStage: String, Codable, Sendable {
    case augmentation = "KA"
    case comparison = "KC"
}

/// Where a build's files go.
public struct KnowledgeBuildPaths: Equatable, Sendable {
    /// The registered name, `<dataset>_KA` or `<dataset>_KC`.
    public var name: String
    /// Relative to the dataset folder (the `file_name` registered).
    public var fileName: String
    public var output: String
    /// `<output without .json>.cache.jsonl`.
    public var cache: String
    /// `<output without .json>.summary.json`.
    public var summary: String

    public init(stage: KnowledgeStage, options: KnowledgeBuildOptions, source: DatasetEntry) {
        name = options.datasetName + "_" + stage.rawValue
        fileName = DatasetRegistration.outputFileName(source: source, name: name)
        output = (options.datasetDirectory as NSString).appendingPathComponent(fileName)
        let stem = (output as NSString).deletingPathExtension
        cache = stem + ".cache.jsonl"
        summary = stem + ".summary.json"
    }
}

public enum KnowledgeBuild {
    /// The source records (after `maxSamples`) and their registry entry. Call on every rank.
    public static func loadSource(_ options: KnowledgeBuildOptions) throws -> (entry: DatasetEntry, records: [SourceRecord]) {
        let registry = try DatasetRegistry(directory: options.datasetDirectory)
        let entry = try registry.entry(named: options.datasetName)
        let examples = try DatasetLoader.load(entry: entry, path: registry.path(of: entry), maxSamples: options.maxSamples)
        return (entry, examples.enumerated().map { SourceRecord(index: $0.offset, example: $0.element) })
    }

    /// Progress after each round: (records done including cached ones, total, records built in this run so far).
    public typealias Progress = (_ done: Int, _ total: Int, _ builtThisRun: Int) -> Void

    /// Builds the KA dataset, writes and registers it on rank 0, and returns the summary (on every rank).
    public static func augment(records: [SourceRecord], source: DatasetEntry, options: KnowledgeBuildOptions,
                               builder: KnowledgeAugmentationBuilder, communicator: any Communicator,
                               progress: Progress? = nil) throws -> KnowledgeBuildSummary {
        let started = Date()
        let (paths, outcomes, dataset, initial) = try buildStage(
            .augmentation, records: records, source: source, options: options, settings: builder.identity,
            teacher: builder.teacher.identity, communicator: communicator, progress: progress, process: builder.augment,
            facts: \.facts, dataset: KnowledgeAugmentationBuilder.dataset)
        var summary = initial
        summary.keptFacts = outcomes.reduce(0) { $0 + $1.keptIndices.count }
        summary.newPairs = outcomes.filter { $0.newPair != nil }.count
        for outcome in outcomes { if let reason = outcome.skipReason { summary.skipped["record.\(reason)", default: 0] += 1 } }
        summary.seconds = Date().timeIntervalSince(started)
        return try publish(dataset.map(DatasetRegistration.record), ranking: false, summary: summary, paths: paths,
                           options: options, communicator: communicator)
    }

    /// Builds the KC dataset, writes and registers it (`"ranking": true`) on rank 0, and returns the summary.
    public static func compare(records: [SourceRecord], source: DatasetEntry, options: KnowledgeBuildOptions,
                               builder: KnowledgeComparisonBuilder, communicator: any Communicator,
                               progress: Progress? = nil) throws -> KnowledgeBuildSummary {
        let started = Date()
        let (paths, outcomes, dataset, initial) = try buildStage(
            .comparison, records: records, source: source, options: options, settings: builder.identity,
            teacher: builder.teacher.identity, communicator: communicator, progress: progress, process: builder.compare,
            facts: \.facts, dataset: KnowledgeComparisonBuilder.dataset)
        var summary = initial
        var pairs: [String: Int] = [:]
        for disturbance in Disturbance.allCases { pairs[disturbance.rawValue] = 0 }
        for outcome in outcomes {
            for pair in outcome.pairs { pairs[pair.disturbance.rawValue, default: 0] += 1 }
            for (what, reason) in outcome.skipped { summary.skipped["\(what).\(reason)", default: 0] += 1 }
        }
        summary.pairs = pairs
        summary.seconds = Date().timeIntervalSince(started)
        return try publish(dataset.map(DatasetRegistration.record), ranking: true, summary: summary, paths: paths,
                           options: options, communicator: communicator)
    }

    /// What both stages do first: every record's outcome (from the cache, or built sharded over the ranks), the
    /// dataset made of them, and the summary's common part.
    static func buildStage<Outcome: Codable, Record>(
        _ stage: KnowledgeStage, records: [SourceRecord], source: DatasetEntry, options: KnowledgeBuildOptions, settings: String,
        teacher: String, communicator: any Communicator, progress: Progress?, process: @escaping (SourceRecord) throws -> Outcome,
        facts: (Outcome) -> [String], dataset: ([SourceRecord], [Outcome]) -> [Record]
    ) throws -> (paths: KnowledgeBuildPaths, outcomes: [Outcome], dataset: [Record], summary: KnowledgeBuildSummary) {
        let paths = KnowledgeBuildPaths(stage: stage, options: options, source: source)
        let cache = BuildCache<Outcome>(path: paths.cache, settings: settings)
        let (outcomes, cached) = try run(records: records, cache: cache, options: options, communicator: communicator,
                                         progress: progress, process: process)
        let built = dataset(records, outcomes)
        let summary = KnowledgeBuildSummary(stage: stage, paths: paths, teacher: teacher, records: records,
                                            factLists: outcomes.map(facts), fromCache: cached, outputRecords: built.count)
        return (paths, outcomes, built, summary)
    }

    /// Rank 0 writes the dataset, the registry entry and the summary; every rank learns whether that worked and
    /// gets rank 0's summary (only rank 0 holds the outcomes).
    static func publish(_ records: [OrderedJSON], ranking: Bool, summary: KnowledgeBuildSummary, paths: KnowledgeBuildPaths,
                        options: KnowledgeBuildOptions, communicator: any Communicator) throws -> KnowledgeBuildSummary {
        try Consensus.runAgreed(communicator: communicator, operation: "write and register the dataset") {
            guard communicator.rank == 0 else { return }
            try DatasetRegistration.writeRecords(records, to: paths.output)
            try DatasetRegistration.register(name: paths.name, fileName: paths.fileName, ranking: ranking,
                                             in: options.datasetDirectory)
            try DatasetRegistration.writeAtomically(Data((try summary.json() + "\n").utf8), to: paths.summary)
        }
        return try communicator.broadcast(summary, root: 0, operation: "build summary")
    }

    /// Builds every record the cache does not hold, sharded over the ranks, and returns all outcomes in record
    /// order on every rank, with how many came from the cache.
    ///
    /// Rank 0 reads the cache and broadcasts the pending indices. Round r covers the next
    /// `size × recordsPerRankPerRound` pending records; rank k builds the ones at offsets k, k + size, …; the
    /// outcomes are all-gathered and rank 0 appends them to the cache. A record's outcome depends only on the
    /// record and the settings, so the result is the same for any number of ranks and any resume point.
    public static func run<Outcome: Codable>(records: [SourceRecord], cache: BuildCache<Outcome>, options: KnowledgeBuildOptions,
                                             communicator: any Communicator, progress: Progress?,
                                             process: @escaping (SourceRecord) throws -> Outcome) throws -> (outcomes: [Outcome], fromCache: Int) {
        var done: [Int: Outcome] = try Consensus.runAgreed(communicator: communicator, operation: "read the build cache") {
            guard communicator.rank == 0 else { return [:] }
            if options.overwriteCache { try cache.remove() }
            return cache.load(records: records)
        }
        let fromCache = done.count
        let pendingOnRoot = records.indices.filter { done[records[$0].index] == nil }
        let pending = try communicator.broadcast(pendingOnRoot, root: 0, operation: "pending records")
        let size = max(1, communicator.size)
        let roundSize = size * max(1, options.recordsPerRankPerRound)
        var built = 0
        progress?(records.count - pending.count, records.count, 0)
        for roundStart in stride(from: 0, to: pending.count, by: roundSize) {
            let round = Array(pending[roundStart..<min(pending.count, roundStart + roundSize)])
            let mine = stride(from: communicator.rank, to: round.count, by: size).map { records[round[$0]] }
            let local = try Consensus.runAgreed(communicator: communicator, operation: "build records") {
                try concurrentMap(mine, limit: options.concurrency, process)
            }
            let gathered = try communicator.allGather(Array(try JSONEncoder().encode(local)), operation: "gather built records")
            try Consensus.runAgreed(communicator: communicator, operation: "append to the build cache") {
                guard communicator.rank == 0 else { return }
                var finished: [(record: SourceRecord, outcome: Outcome)] = []
                for (rank, bytes) in gathered.enumerated() {
                    let outcomes = try JSONDecoder().decode([Outcome].self, from: Data(bytes))
                    let theirs = stride(from: rank, to: round.count, by: size).map { records[round[$0]] }
                    guard outcomes.count == theirs.count else {
                        throw KnowTuneError.invalidInput("rank \(rank) returned \(outcomes.count) outcomes for \(theirs.count) records")
                    }
                    for (record, outcome) in zip(theirs, outcomes) {
                        done[record.index] = outcome
                        finished.append((record, outcome))
                    }
                }
                try cache.append(finished.sorted { $0.record.index < $1.record.index })
            }
            built += round.count
            progress?(records.count - pending.count + built, records.count, built)
        }
        // Only rank 0 collected the outcomes; the others return an empty list (they do not publish).
        guard communicator.rank == 0 else { return ([], fromCache) }
        let outcomes = try records.map { record -> Outcome in
            guard let outcome = done[record.index] else {
                throw KnowTuneError.invalidInput("record \(record.index) was neither cached nor built")
            }
            return outcome
        }
        return (outcomes, fromCache)
    }

    /// `items.map(transform)` on up to `limit` threads, results in order; rethrows the first item's error.
    static func concurrentMap<T, R>(_ items: [T], limit: Int, _ transform: @escaping (T) throws -> R) throws -> [R] {
        guard limit > 1, items.count > 1 else { return try items.map(transform) }
        let slots = ResultSlots<R>(count: items.count)
        let group = DispatchGroup()
        for _ in 0..<min(limit, items.count) {
            group.enter()
            let worker = Thread {
                while let index = slots.claim() { slots.store(Result { try transform(items[index]) }, at: index) }
                group.leave()
            }
            worker.start()
        }
        group.wait()
        return try slots.values()
    }
}

/// Work distribution and results of ``KnowledgeBuild/concurrentMap(_:limit:_:)``.
private final class ResultSlots<R>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<R, Error>?]
    private var next = 0

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < results.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ result: Result<R, Error>, at index: Int) {
        lock.lock()
        defer { lock.unlock() }
        results[index] = result
    }

    func values() throws -> [R] {
        lock.lock()
        defer { lock.unlock() }
        return try results.map { slot in
            guard let slot else { throw KnowTuneError.invalidInput("a record was not processed") }
            return try slot.get()
        }
    }
}
