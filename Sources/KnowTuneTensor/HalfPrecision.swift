// Implements conversions between fp32 and the 16-bit formats (IEEE half, bfloat16); does not do arithmetic.

public enum HalfPrecision {
    /// IEEE 754 binary16 bits → Float (exact).
    @inline(__always)
    public static func float(fromHalfBits bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// bfloat16 bits → Float (exact: bf16 is the top half of an fp32).
    @inline(__always)
    public static func float(fromBFloat16Bits bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → binary16 bits, rounding to nearest even.
    @inline(__always)
    public static func halfBits(from value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    /// Float → bfloat16 bits, rounding to nearest even (NaN stays NaN), as PyTorch's `.to(torch.bfloat16)`.
    @inline(__always)
    public static func bfloat16Bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
        let roundingBias = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}
