// Tests a whole build at library level: the same files for 1, 2 and 3 in-process ranks, registration that keeps
// every other entry byte for byte and loads back through DatasetRegistry, resume from a partial (torn) cache, and
// the order-preserving JSON writer against Python's format.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneKnowledge
import KnowTuneTestSupport
import XCTest

final class KnowledgeBuildTests: XCTestCase {
    /// Runs a KC build of `folder` on `ranks` in-process ranks and returns rank 0's summary.
    func buildKC(_ folder: String, ranks: Int, seed: UInt64 = 42, perRound: Int = 1) throws -> KnowledgeBuildSummary {
        let options = KnowledgeBuildOptions(datasetName: "toy_train", datasetDirectory: folder, recordsPerRankPerRound: perRound)
        let group = LocalGroup(size: ranks)
        let results = group.run { communicator -> Result<KnowledgeBuildSummary, Error> in
            Result {
                let source = try KnowledgeBuild.loadSource(options)
                let builder = try KnowledgeComparisonBuilder(teacher: RuleTeacher(records: source.records), seed: seed)
                return try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                  communicator: communicator)
            }
        }
        let summaries = try results.map { try $0.get() }
        for summary in summaries { XCTAssertEqual(summary, summaries[0], "every rank returns rank 0's summary") }
        return summaries[0]
    }

    func testSameFilesForAnyNumberOfRanks() throws {
        var outputs: [Data] = []
        for ranks in 1...3 {
            let folder = try KnowledgeFixtures.dataDirectory("ranks\(ranks)", rows: KnowledgeFixtures.records + KnowledgeFixtures.badRecords)
            let summary = try buildKC(folder, ranks: ranks)
            XCTAssertEqual(summary.records, 11)
            XCTAssertEqual(summary.outputRecords, 18 + 6)
            XCTAssertEqual(summary.pairs, ["incomplete": 8, "nonfactual": 8, "illogical": 8])
            XCTAssertEqual(summary.emptyAnswers, 1)
            XCTAssertEqual(summary.singleFactAnswers, 1)
            XCTAssertEqual(summary.skipped, ["record.no_facts": 2, "incomplete.too_few_facts": 1, "illogical.too_few_facts": 1,
                                             "nonfactual.unchanged": 1])
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: folder + "/qa/toy_train_KC.json")))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }

    func testRegistrationKeepsEveryOtherEntryAndLoadsBack() throws {
        let folder = try KnowledgeFixtures.dataDirectory("registration")
        let before = try String(contentsOfFile: folder + "/dataset_info.json", encoding: .utf8)
        let summary = try buildKC(folder, ranks: 1)
        XCTAssertEqual(summary.name, "toy_train_KC")
        XCTAssertEqual(summary.outputFile, folder + "/qa/toy_train_KC.json")
        let after = try String(contentsOfFile: folder + "/dataset_info.json", encoding: .utf8)
        let added = """
            ,
              "toy_train_KC": {
                "file_name": "qa/toy_train_KC.json",
                "columns": {
                  "prompt": "instruction",
                  "query": "input",
                  "response": "output"
                },
                "ranking": true
              }
            }

            """
        XCTAssertEqual(after, String(before.dropLast(3)) + added, "only the new entry is appended; the rest is unchanged")

        // A second build replaces the entry in place; a KA registration lands beside it.
        _ = try buildKC(folder, ranks: 1, seed: 5)
        try DatasetRegistration.register(name: "toy_train_KA", fileName: "qa/toy_train_KA.json", ranking: false, in: folder)
        let registry = try DatasetRegistry(directory: folder)
        XCTAssertEqual(registry.names, ["other_first", "other_last", "toy_train", "toy_train_KA", "toy_train_KC"])
        XCTAssertEqual(registry.entries["other_last"]?.ranking, true)
        XCTAssertEqual(registry.entries["toy_train_KA"]?.ranking, false)
        let final = try String(contentsOfFile: folder + "/dataset_info.json", encoding: .utf8)
        XCTAssertTrue(final.hasPrefix(String(before.dropLast(3))))
        XCTAssertEqual(final.components(separatedBy: "\"toy_train_KC\"").count, 2, "no duplicate entry")
        XCTAssertTrue(final.contains("\"ränkïng.json\""), "non-ASCII text kept as is")

        // The built file is a ranking dataset our loader (and LLaMA-Factory's) accepts.
        let entry = try registry.entry(named: "toy_train_KC")
        let examples = try DatasetLoader.load(entry: entry, path: registry.path(of: entry), maxSamples: nil)
        XCTAssertEqual(examples.count, 18)
        for example in examples {
            XCTAssertEqual(example.responses.count, 2)
            XCTAssertNotEqual(example.responses[0], example.responses[1])
        }
        let raw = try KnowledgeFixtures.jsonArray(folder + "/qa/toy_train_KC.json")
        XCTAssertEqual(Set(raw.flatMap { $0.keys }), ["instruction", "input", "output"])
    }

    func testResumeFromAPartialCacheGivesTheSameOutput() throws {
        let folder = try KnowledgeFixtures.dataDirectory("resume")
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)
        let options = KnowledgeBuildOptions(datasetName: "toy_train", datasetDirectory: folder, recordsPerRankPerRound: 2)
        let source = try KnowledgeBuild.loadSource(options)
        XCTAssertEqual(source.records, records)

        func build(_ scorer: LengthScorer) throws -> KnowledgeBuildSummary {
            let builder = KnowledgeAugmentationBuilder(teacher: RuleTeacher(), scorer: scorer)
            return try KnowledgeBuild.augment(records: records, source: source.entry, options: options, builder: builder,
                                              communicator: SingleProcessCommunicator())
        }
        let full = try build(LengthScorer())
        XCTAssertEqual(full.recordsFromCache, 0)
        XCTAssertEqual(full.outputRecords, 12)
        let output = folder + "/qa/toy_train_KA.json"
        let complete = try Data(contentsOf: URL(fileURLWithPath: output))
        let cachePath = folder + "/qa/toy_train_KA.cache.jsonl"
        let lines = try String(contentsOfFile: cachePath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, records.count)

        // Killed after two records, in the middle of writing the third line.
        try (lines.prefix(2).joined(separator: "\n") + "\n" + lines[2].prefix(40)).write(toFile: cachePath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: output)
        let scorer = LengthScorer()
        let resumed = try build(scorer)
        XCTAssertEqual(resumed.recordsFromCache, 2)
        XCTAssertEqual(scorer.calls, records.count - 2, "only the missing records are scored")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)), complete)
        let cacheLines = try String(contentsOfFile: cachePath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(cacheLines.count, records.count + 1, "the torn line stays on its own line and is ignored")

        // Everything cached: nothing is scored again.
        let again = LengthScorer()
        XCTAssertEqual(try build(again).recordsFromCache, records.count)
        XCTAssertEqual(again.calls, 0)

        // Other settings (keep rule) do not reuse the cache.
        let fraction = KnowledgeAugmentationBuilder(teacher: RuleTeacher(), scorer: LengthScorer(), keep: .fraction(0.2))
        let other = try KnowledgeBuild.augment(records: records, source: source.entry, options: options, builder: fraction,
                                               communicator: SingleProcessCommunicator())
        XCTAssertEqual(other.recordsFromCache, 0)
        XCTAssertEqual(other.keptFacts, records.count, "⌈0.2·n⌉ = 1 fact per record")

        // --overwrite_cache starts over.
        var fresh = options
        fresh.overwriteCache = true
        let rebuilt = try KnowledgeBuild.augment(records: records, source: source.entry, options: fresh,
                                                 builder: KnowledgeAugmentationBuilder(teacher: RuleTeacher(), scorer: LengthScorer()),
                                                 communicator: SingleProcessCommunicator())
        XCTAssertEqual(rebuilt.recordsFromCache, 0)
        XCTAssertEqual(try String(contentsOfFile: cachePath, encoding: .utf8).split(separator: "\n").count, records.count)
    }

    func testChangedRecordsAreRebuilt() throws {
        let folder = try KnowledgeFixtures.dataDirectory("changed")
        _ = try buildKC(folder, ranks: 2)
        var rows = KnowledgeFixtures.records
        rows[1]["output"] = "Marie Curie was a chemist. She lived in Paris."
        try JSONSerialization.data(withJSONObject: rows).write(to: URL(fileURLWithPath: folder + "/qa/toy_train.json"))
        let summary = try buildKC(folder, ranks: 2)
        // The entity pool changed with the text, so every KC record is rebuilt (its key holds the pool's hash).
        XCTAssertEqual(summary.recordsFromCache, 0)
        let unchangedPool = try buildKC(folder, ranks: 1)
        XCTAssertEqual(unchangedPool.recordsFromCache, rows.count)
    }

    func testShardedScoringGathersEveryRecordOnEveryRank() throws {
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)
        let items = records.map { ($0, AtomicFactSplitter().facts(in: $0.output)) }
        let expected = items.map { RecordFactScores(index: $0.0.index, perplexities: $0.1.map { Double($0.count) }) }
        let results = LocalGroup(size: 3).run { communicator -> [RecordFactScores] in
            let scorer = LengthScorer()
            let scores = (try? scorer.scoreSharded(items.map { (record: $0.0, facts: $0.1) }, communicator: communicator)) ?? []
            XCTAssertEqual(scorer.calls, 2, "rank \(communicator.rank) scores its stride of 6 records")
            return scores
        }
        XCTAssertEqual(results, Array(repeating: expected, count: 3))
    }

    func testOrderedJSONWritesPythonsFormat() throws {
        let path = TestPaths.repositoryRoot.appendingPathComponent("data/dataset_info.json").path
        let text = try Data(contentsOf: URL(fileURLWithPath: path))
        let parsed = try OrderedJSON.parse(text, path: path)
        XCTAssertEqual(Data((parsed.serialized() + "\n").utf8), text, "json.dumps(indent=2, ensure_ascii=False) + newline")
        let tricky = #"{"a": [], "b": {}, "c": "tab\tquote\"slash/\u0001 é \ud83d\ude00", "d": -1.5e3, "e": [true, false, null]}"#
        let value = try OrderedJSON.parse(Data(tricky.utf8), path: "inline")
        XCTAssertEqual(value.serialized(), """
            {
              "a": [],
              "b": {},
              "c": "tab\\tquote\\"slash/\\u0001 é 😀",
              "d": -1.5e3,
              "e": [
                true,
                false,
                null
              ]
            }
            """)
        XCTAssertThrowsError(try OrderedJSON.parse(Data("{\"a\": 1,}".utf8), path: "bad"))
        XCTAssertThrowsError(try OrderedJSON.parse(Data("[1] 2".utf8), path: "bad"))
    }
}
