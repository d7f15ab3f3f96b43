// Implements what every golden test shares: the real SmolLM2 model loaded once per process (failing, never
// skipping, when it is missing), JSON number helpers, and the README's exactly-representable LoRA pattern.
import Foundation
import KnowTuneModel

public enum GoldenModel {
    private static var cachedModel: LoadedModel?
    private static let lock = NSLock()

    /// The real model at `TestPaths.smolLM2`, dequantised once.
    public static func smolLM2() throws -> LoadedModel {
        lock.lock()
        defer { lock.unlock() }
        if let cachedModel { return cachedModel }
        let model = try ModelLoader.load(try TestPaths.require(TestPaths.smolLM2))
        cachedModel = model
        return model
    }

    public static func int32Array(_ value: Any?) -> [Int32] { (value as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.int32Value } }
    public static func floatArray(_ value: Any?) -> [Float] { (value as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.floatValue } }
    public static func double(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? .nan }

    /// Tests/Fixtures/golden/README.md's pattern: A[i,j] = ((3i + 5j + 7·layer + 11m) mod 19 − 9)/512,
    /// B[i,j] = ((7i + 2j + 5·layer + 3m) mod 23 − 11)/1024, m = the module kind's index.
    public static func fillPattern(_ buffer: LoRABuffer) {
        let r = buffer.layout.configuration.rank
        for slot in buffer.layout.slots {
            let m = slot.kind.rawValue, layer = slot.layer
            for i in 0..<r {
                for j in 0..<slot.inFeatures {
                    buffer.values[slot.aOffset + i * slot.inFeatures + j] = Float(((3 * i + 5 * j + 7 * layer + 11 * m) % 19) - 9) / 512
                }
            }
            for i in 0..<slot.outFeatures {
                for j in 0..<r {
                    buffer.values[slot.bOffset + i * r + j] = Float(((7 * i + 2 * j + 5 * layer + 3 * m) % 23) - 11) / 1024
                }
            }
        }
    }
}
