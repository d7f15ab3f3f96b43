// Replays the committed fuzz corpora through every parser in the plain build (no sanitizer): each target has seeds,
// every seed is accepted (the parser reads the real files they were cut from), and every crash file a fuzz run found
// is now refused with an error instead of crashing, hanging or allocating without bound.
import Foundation
import KnowTuneFuzzing
import KnowTuneTestSupport
import XCTest

final class FuzzCorpusReplayTests: XCTestCase {
    private func files(of target: FuzzTarget) throws -> [URL] {
        let folder = TestPaths.fuzzCorpora.appendingPathComponent(target.rawValue)
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testEveryTargetHasSeedsThatItsParserAccepts() throws {
        for target in FuzzTarget.allCases {
            let seeds = try files(of: target).filter { $0.lastPathComponent.hasPrefix("seed-") }
            XCTAssertFalse(seeds.isEmpty, "\(target.rawValue) has seeds")
            for seed in seeds {
                XCTAssertNoThrow(try target.check(Data(contentsOf: seed)), "\(target.rawValue)/\(seed.lastPathComponent)")
            }
        }
    }

    func testCrashFilesAreRefusedCleanly() throws {
        var replayed = 0
        for target in FuzzTarget.allCases {
            for file in try files(of: target) where file.lastPathComponent.hasPrefix("crash-") {
                let started = Date()
                XCTAssertThrowsError(try target.check(Data(contentsOf: file)), "\(target.rawValue)/\(file.lastPathComponent)")
                XCTAssertLessThan(Date().timeIntervalSince(started), 10, "\(file.lastPathComponent) ends in bounded time")
                replayed += 1
            }
        }
        print("replayed \(replayed) crash files")
    }

    /// Damaged variants of each seed (truncated at every 1/16, a byte flipped at every 1/16) end with an error or a
    /// result, never a crash: a cheap sweep that runs in every CI build.
    func testTruncatedAndFlippedSeedsNeverCrash() throws {
        for target in FuzzTarget.allCases {
            for seed in try files(of: target).filter({ $0.lastPathComponent.hasPrefix("seed-") }) {
                let bytes = try Data(contentsOf: seed)
                for sixteenth in 0..<16 {
                    let cut = bytes.count * sixteenth / 16
                    target.run(bytes.prefix(cut))
                    var flipped = bytes
                    if cut < flipped.count { flipped[cut] ^= 0x5a }
                    target.run(flipped)
                }
            }
        }
    }
}
