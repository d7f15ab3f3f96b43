// Implements the held-out validation split (`val_size` as a count when > 1, else a fraction) with a fixed seed;
// does not reproduce numpy's PCG64 stream (KnowTune uses its own seeded shuffle, documented in the README).
import KnowTuneTensor

public enum ValidationSplit {
    /// A seeded Fisher–Yates permutation of 0..<count.
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var generator = SplitMix64(seed: seed)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(generator.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return order
    }

    /// (train indices in shuffled order, validation indices), as `train_test_split(test_size=val_size, seed)`.
    public static func split(count: Int, valSize: Double, seed: UInt64) throws -> (train: [Int], validation: [Int]) {
        guard valSize > 1e-6 else { return (Array(0..<count), []) }
        let validationCount = valSize > 1 ? Int(valSize) : Int((Double(count) * valSize).rounded(.up))
        guard validationCount < count else {
            throw KnowTuneError.invalidConfiguration("val_size \(valSize) leaves no training examples out of \(count)")
        }
        let order = permutation(count: count, seed: seed)
        return (Array(order[validationCount...]), Array(order[..<validationCount]))
    }
}
