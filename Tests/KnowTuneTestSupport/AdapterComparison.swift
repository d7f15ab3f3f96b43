// Implements reading a PEFT adapter folder's tensors and their largest element-wise difference, for the tests that
// compare runs (1 vs 2 ranks, launchers, resumes); does not judge tolerances (each test does).
import KnowTuneModel

/// An adapter's tensors (name → values) from `folder/adapter_model.safetensors`.
public func readAdapter(_ folder: String) throws -> [String: [Float]] {
    let file = try SafeTensorsFile(path: folder + "/adapter_model.safetensors")
    var result: [String: [Float]] = [:]
    for name in file.tensors.keys { result[name] = try file.readArray(name) }
    return result
}

/// The largest |a − b| over all tensors; infinity when the names or sizes differ or there are none.
public func maxAbsoluteDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
    var worst: Float = 0
    for (name, values) in a {
        guard let other = b[name], other.count == values.count else { return .infinity }
        for i in values.indices { worst = max(worst, abs(values[i] - other[i])) }
    }
    return a.count == b.count && !a.isEmpty ? worst : .infinity
}

/// ‖a − b‖ / ‖b‖ over all tensors together (L2); infinity when the names or sizes differ.
public func relativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
    var difference = 0.0, norm = 0.0
    for (name, values) in a {
        guard let other = b[name], other.count == values.count else { return .infinity }
        for i in values.indices {
            difference += Double(values[i] - other[i]) * Double(values[i] - other[i])
            norm += Double(other[i]) * Double(other[i])
        }
    }
    return a.count == b.count && norm > 0 ? (difference / norm).squareRoot() : .infinity
}
