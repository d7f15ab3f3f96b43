// Implements the floating-point operations of the Python reference stack whose results the metrics
// must reproduce bit for bit: `round(x, ndigits)` (CPython's correctly rounded decimal rounding),
// `math.fsum` (exactly rounded summation) and `numpy.mean` on a 1-D float64 array (pairwise
// summation); does not implement `round` for more than 4 digits or numpy's strided/multi-axis paths.
//
// `log`, `exp` and `pow` need nothing here: CPython's `math` calls the C library, and so does
// Foundation on Linux, so both get glibc's results.

enum PythonFloatArithmetic {
    /// CPython's `round(x, digits)` for `digits` in 0...4.
    ///
    /// CPython rounds the exact binary value of `x` to `digits` decimals (ties to even on the exact
    /// value, which is why `round(2.675, 2)` is 2.67) and returns the double nearest that decimal.
    /// Here `x = m·2^e` exactly, so `x·10^d = m·5^d·2^(e+d)`; with d ≤ 4, `m·5^d < 2^63` fits a
    /// `UInt64` and the rounding is a shift with a remainder test. The final `Double(q) / 10^d` is
    /// one correctly rounded division, the same double CPython's `strtod` of the decimal gives.
    /// Exact for |x| < 2^53·10^-d (scores are at most 100).
    static func round(_ x: Double, digits: Int) -> Double {
        precondition((0...4).contains(digits), "round supports 0...4 decimal digits")
        guard x.isFinite, x != 0 else { return x }
        let powersOfFive: [UInt64] = [1, 5, 25, 125, 625]
        let powersOfTen: [Double] = [1, 10, 100, 1_000, 10_000]
        let magnitude = x.magnitude
        let significand: UInt64
        let exponent: Int
        if magnitude.isNormal {
            significand = magnitude.significandBitPattern | (1 << 52)
            exponent = Int(magnitude.exponentBitPattern) - 1075
        } else {
            significand = magnitude.significandBitPattern
            exponent = -1074
        }
        let shift = -(exponent + digits)
        // x·10^d is already an integer: nothing to round.
        if shift <= 0 { return x }
        let scaled = significand * powersOfFive[digits]
        var quotient: UInt64 = 0
        if shift < 64 {
            quotient = scaled >> UInt64(shift)
            let remainder = scaled & ((1 << UInt64(shift)) - 1)
            let half: UInt64 = 1 << UInt64(shift - 1)
            if remainder > half || (remainder == half && quotient & 1 == 1) { quotient += 1 }
        }
        // With shift ≥ 64, scaled < 2^63 ≤ half an ulp of the result: it rounds to zero.
        let rounded = Double(quotient) / powersOfTen[digits]
        return x < 0 ? -rounded : rounded
    }

    /// CPython's `math.fsum`: the correctly rounded sum of the exact values (Shewchuk's
    /// non-overlapping partials, then a round-half-even fix-up on the top two partials).
    ///
    /// NLTK 3.7 `corpus_bleu` adds the weighted log-precisions with `math.fsum`, so a naive loop
    /// could differ from it in the last bit. Finite inputs only (the callers never pass others).
    static func fsum(_ values: [Double]) -> Double {
        var partials: [Double] = []
        for value in values {
            var x = value
            var kept = 0
            for index in partials.indices {
                var y = partials[index]
                if x.magnitude < y.magnitude { swap(&x, &y) }
                let high = x + y
                let low = y - (high - x)
                if low != 0 {
                    partials[kept] = low
                    kept += 1
                }
                x = high
            }
            partials.removeSubrange(kept...)
            partials.append(x)
        }
        guard var index = partials.indices.last else { return 0 }
        var high = partials[index]
        var low = 0.0
        while index > 0 {
            index -= 1
            let x = high
            let y = partials[index]
            high = x + y
            low = y - (high - x)
            if low != 0 { break }
        }
        // If the discarded tail pushes `low` further the same way, the sum is not a tie at half an
        // ulp but above it: round away, as CPython does.
        if index > 0, (low < 0 && partials[index - 1] < 0) || (low > 0 && partials[index - 1] > 0) {
            let y = low * 2
            let x = high + y
            if y == x - high { high = x }
        }
        return high
    }

    /// `float(numpy.mean(values))` for a 1-D float64 list: numpy's pairwise summation (blocks of 8
    /// accumulators up to 128 elements, halves rounded down to a multiple of 8 above that), then
    /// one division by the count. LLaMA-Factory 0.5.3 averages the per-example scores this way.
    static func numpyMean(_ values: [Double]) -> Double {
        values.withUnsafeBufferPointer { buffer in
            pairwiseSum(buffer[...]) / Double(buffer.count)
        }
    }

    private static func pairwiseSum(_ values: Slice<UnsafeBufferPointer<Double>>) -> Double {
        let count = values.count
        let start = values.startIndex
        if count < 8 {
            var sum = 0.0
            for value in values { sum += value }
            return sum
        }
        if count <= 128 {
            var accumulators = [Double](values[start..<start + 8])
            var offset = 8
            while offset < count - count % 8 {
                for lane in 0..<8 { accumulators[lane] += values[start + offset + lane] }
                offset += 8
            }
            var sum = ((accumulators[0] + accumulators[1]) + (accumulators[2] + accumulators[3]))
                + ((accumulators[4] + accumulators[5]) + (accumulators[6] + accumulators[7]))
            while offset < count {
                sum += values[start + offset]
                offset += 1
            }
            return sum
        }
        var half = count / 2
        half -= half % 8
        return pairwiseSum(values[start..<start + half]) + pairwiseSum(values[(start + half)...])
    }
}
