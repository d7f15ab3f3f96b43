// Implements rotary position embedding in HF's non-interleaved form (`rotate_half`: dimension i pairs with
// i + D/2), forward and backward, in place; does not handle rope scaling variants.
import Foundation

/// Precomputed cos/sin tables [positions, D/2], built like transformers: inv_freq = θ^(−2i/D) in fp32.
public struct RotaryEmbedding {
    public let headDimension: Int
    public let maxPositions: Int
    public let cosines: [Float]
    public let sines: [Float]

    public init(headDimension: Int, theta: Double, maxPositions: Int) {
        self.headDimension = headDimension
        self.maxPositions = maxPositions
        let half = headDimension / 2
        var cosines = [Float](repeating: 0, count: maxPositions * half)
        var sines = [Float](repeating: 0, count: maxPositions * half)
        for i in 0..<half {
            // fp32 like transformers' `inv_freq` and `freqs = pos · inv_freq` (the product is rounded in fp32).
            let inverseFrequency = Float(1.0 / pow(theta, Double(2 * i) / Double(headDimension)))
            for position in 0..<maxPositions {
                let angle = Float(position) * inverseFrequency
                cosines[position * half + i] = Float(cos(Double(angle)))
                sines[position * half + i] = Float(sin(Double(angle)))
            }
        }
        self.cosines = cosines
        self.sines = sines
    }

    /// Rotates every head of `rows` vectors in place; `positions[r]` is row r's position. `sign` −1 applies the
    /// inverse rotation, which is exactly the backward pass (the rotation is orthogonal).
    public func apply(_ data: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int,
                      positions: UnsafePointer<Int32>, inverse: Bool = false) {
        let half = headDimension / 2
        cosines.withUnsafeBufferPointer { cosBuffer in
            sines.withUnsafeBufferPointer { sinBuffer in
                guard let cosBase = cosBuffer.baseAddress, let sinBase = sinBuffer.baseAddress else { return }
                for row in 0..<rows {
                    let position = Int(positions[row])
                    precondition(position < maxPositions, "position \(position) beyond the rotary table")
                    let c = cosBase + position * half
                    let s = sinBase + position * half
                    let sign: Float = inverse ? -1 : 1
                    for head in 0..<heads {
                        let v = data + row * rowStride + head * headDimension
                        for i in 0..<half {
                            let x1 = v[i], x2 = v[i + half]
                            let sn = sign * s[i]
                            v[i] = x1 * c[i] - x2 * sn
                            v[i + half] = x2 * c[i] + x1 * sn
                        }
                    }
                }
            }
        }
    }
}
