// Implements dequantisation of ggml's 256-element "K-quant" super-blocks (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K) to
// fp32, following the `block_q*_K` layouts and `dequantize_row_q*_K` of `ggml-quants.c` (QK_K = 256);
// does not validate sizes or dispatch on the type (GGUFDequantizer does both, then calls in here).
import KnowTuneTensor

enum GGUFKQuantDequantizer {
    /// Elements per super-block (ggml's QK_K).
    static let superBlockElements = 256

    // Every super-block is walked in the order of ggml's C loops, and every value is computed with the same fp32
    // operations in the same order (for example Q6_K's `d * sc * q` is `(d·sc)·q`), so the results match
    // `dequantize_row_q*_K` bit for bit.

    /// `block_q2_K` (84 bytes): u8 scales[16] (low nibble: scale, high nibble: min, one pair per 16 elements),
    /// u8 qs[64] (2-bit quants), f16 d, f16 dmin; x = (d·scale)·q − dmin·min.
    ///
    /// The 2-bit quants are not packed four consecutive elements per byte: each 128-element half reads 32 bytes
    /// four times, taking bits 0–1, then 2–3, 4–5 and 6–7, so byte k of a half holds elements k, k+32, k+64, k+96.
    static func dequantiseQ2_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 84
            let scales = blockBase
            let quants = blockBase + 16
            let scale = GGUFDequantizer.half(blockBase, at: 80)
            let minimumScale = GGUFDequantizer.half(blockBase, at: 82)
            let out = destination + block * superBlockElements
            for half in 0..<2 {
                for shiftIndex in 0..<4 {
                    let shift = UInt8(2 * shiftIndex)
                    for group in 0..<2 {
                        // One scale/min pair per 16 elements, in element order: index = element / 16.
                        let packed = scales.load(fromByteOffset: 8 * half + 2 * shiftIndex + group, as: UInt8.self)
                        let groupScale = scale * Float(packed & 0x0F)
                        let groupMinimum = minimumScale * Float(packed >> 4)
                        for l in 0..<16 {
                            let byte = quants.load(fromByteOffset: 32 * half + 16 * group + l, as: UInt8.self)
                            out[128 * half + 32 * shiftIndex + 16 * group + l] =
                                groupScale * Float((byte >> shift) & 3) - groupMinimum
                        }
                    }
                }
            }
        }
    }

    /// Signed scale `i` (0…15) of a Q3_K super-block, unpacked from its 12 bytes: the low four bits come from
    /// byte i (i < 8, low nibble) or byte i − 8 (i ≥ 8, high nibble), the high two bits from byte 8 + i mod 4 at
    /// bit 2·(i / 4); the stored 6-bit value is offset by 32 (ggml's `kmask1`/`kmask2` unpacking).
    @inline(__always)
    private static func q3KScale(_ i: Int, _ packed: UnsafeRawPointer) -> Int {
        let lowByte = packed.load(fromByteOffset: i % 8, as: UInt8.self)
        let low = i < 8 ? lowByte & 0x0F : lowByte >> 4
        let high = (packed.load(fromByteOffset: 8 + i % 4, as: UInt8.self) >> UInt8(2 * (i / 4))) & 3
        return Int(low | high << 4) - 32
    }

    /// `block_q3_K` (110 bytes): u8 hmask[32] (high bits), u8 qs[64] (low 2 bits, laid out as in Q2_K),
    /// u8 scales[12] (sixteen 6-bit scales), f16 d; x = (d·(scale − 32))·q with q = low − (high bit set ? 0 : 4).
    ///
    /// Note the inverted high bit: a set bit in `hmask` means "no offset", a clear one subtracts 4, so q spans
    /// −4…3. Bit b of hmask byte k belongs to element 32·b + k.
    static func dequantiseQ3_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 110
            let highMasks = blockBase
            let quants = blockBase + 32
            let packedScales = blockBase + 96
            let scale = GGUFDequantizer.half(blockBase, at: 108)
            let out = destination + block * superBlockElements
            for half in 0..<2 {
                for shiftIndex in 0..<4 {
                    let shift = UInt8(2 * shiftIndex)
                    let highBit = UInt8(1) << UInt8(4 * half + shiftIndex)
                    for group in 0..<2 {
                        let groupScale = scale * Float(q3KScale(8 * half + 2 * shiftIndex + group, packedScales))
                        for l in 0..<16 {
                            let k = 16 * group + l
                            let low = Int((quants.load(fromByteOffset: 32 * half + k, as: UInt8.self) >> shift) & 3)
                            let offset = highMasks.load(fromByteOffset: k, as: UInt8.self) & highBit != 0 ? 0 : 4
                            out[128 * half + 32 * shiftIndex + k] = groupScale * Float(low - offset)
                        }
                    }
                }
            }
        }
    }

    /// Scale and min of sub-block `j` (0…7) of a Q4_K/Q5_K super-block, from its 12 packed bytes (ggml's
    /// `get_scale_min_k4`): sub-blocks 0–3 keep 6-bit values in the low bits of bytes j (scale) and j + 4 (min);
    /// sub-blocks 4–7 take their low four bits from byte j + 4 (scale: low nibble, min: high nibble) and their high
    /// two bits from the top bits of bytes j − 4 (scale) and j (min).
    @inline(__always)
    private static func scaleAndMinimum(_ j: Int, _ packed: UnsafeRawPointer) -> (scale: UInt8, minimum: UInt8) {
        func byte(_ index: Int) -> UInt8 { packed.load(fromByteOffset: index, as: UInt8.self) }
        if j < 4 {
            return (byte(j) & 63, byte(j + 4) & 63)
        }
        return ((byte(j + 4) & 0x0F) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4))
    }

    /// `block_q4_K` (144 bytes): f16 d, f16 dmin, u8 scales[12] (eight 6-bit scale/min pairs), u8 qs[128];
    /// x = (d·scale)·q − dmin·min per 32-element sub-block.
    ///
    /// Each 64-element chunk reads 32 bytes twice: low nibbles give its first 32 elements, high nibbles the next
    /// 32 (unlike the legacy blocks, whose split is over 16 bytes).
    static func dequantiseQ4_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 144
            let scale = GGUFDequantizer.half(blockBase, at: 0)
            let minimumScale = GGUFDequantizer.half(blockBase, at: 2)
            let packedScales = blockBase + 4
            let quants = blockBase + 16
            let out = destination + block * superBlockElements
            for chunk in 0..<4 {
                let first = scaleAndMinimum(2 * chunk, packedScales)
                let second = scaleAndMinimum(2 * chunk + 1, packedScales)
                let firstScale = scale * Float(first.scale), firstMinimum = minimumScale * Float(first.minimum)
                let secondScale = scale * Float(second.scale), secondMinimum = minimumScale * Float(second.minimum)
                for l in 0..<32 {
                    let byte = quants.load(fromByteOffset: 32 * chunk + l, as: UInt8.self)
                    out[64 * chunk + l] = firstScale * Float(byte & 0x0F) - firstMinimum
                    out[64 * chunk + 32 + l] = secondScale * Float(byte >> 4) - secondMinimum
                }
            }
        }
    }

    /// `block_q5_K` (176 bytes): f16 d, f16 dmin, u8 scales[12] (as Q4_K), u8 qh[32] (fifth bits), u8 qs[128]
    /// (low nibbles, as Q4_K); x = (d·scale)·q − dmin·min. Bit s of qh byte k is the fifth bit of element 32·s + k.
    static func dequantiseQ5_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 176
            let scale = GGUFDequantizer.half(blockBase, at: 0)
            let minimumScale = GGUFDequantizer.half(blockBase, at: 2)
            let packedScales = blockBase + 4
            let highBits = blockBase + 16
            let quants = blockBase + 48
            let out = destination + block * superBlockElements
            for chunk in 0..<4 {
                let first = scaleAndMinimum(2 * chunk, packedScales)
                let second = scaleAndMinimum(2 * chunk + 1, packedScales)
                let firstScale = scale * Float(first.scale), firstMinimum = minimumScale * Float(first.minimum)
                let secondScale = scale * Float(second.scale), secondMinimum = minimumScale * Float(second.minimum)
                let firstHighBit = UInt8(1) << UInt8(2 * chunk), secondHighBit = UInt8(1) << UInt8(2 * chunk + 1)
                for l in 0..<32 {
                    let byte = quants.load(fromByteOffset: 32 * chunk + l, as: UInt8.self)
                    let high = highBits.load(fromByteOffset: l, as: UInt8.self)
                    let firstQuant = Int(byte & 0x0F) + (high & firstHighBit != 0 ? 16 : 0)
                    let secondQuant = Int(byte >> 4) + (high & secondHighBit != 0 ? 16 : 0)
                    out[64 * chunk + l] = firstScale * Float(firstQuant) - firstMinimum
                    out[64 * chunk + 32 + l] = secondScale * Float(secondQuant) - secondMinimum
                }
            }
        }
    }

    /// `block_q6_K` (210 bytes): u8 ql[128] (low nibbles), u8 qh[64] (high 2 bits), i8 scales[16], f16 d
    /// (note: d comes last); x = (d·scale)·(q − 32), one scale per 16 elements.
    ///
    /// Per 128-element half, element l + 32·k (k = 0…3, l = 0…31) takes the low nibble of ql byte l + 32·(k mod 2)
    /// for k < 2 and the high nibble for k ≥ 2, and bits 2k…2k+1 of qh byte l.
    static func dequantiseQ6_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 210
            let scale = GGUFDequantizer.half(blockBase, at: 208)
            let out = destination + block * superBlockElements
            for half in 0..<2 {
                let lowBits = blockBase + 64 * half
                let highBits = blockBase + 128 + 32 * half
                let scales = blockBase + 192 + 8 * half
                for l in 0..<32 {
                    let group = l / 16
                    let lowFirst = lowBits.load(fromByteOffset: l, as: UInt8.self)
                    let lowSecond = lowBits.load(fromByteOffset: l + 32, as: UInt8.self)
                    let high = highBits.load(fromByteOffset: l, as: UInt8.self)
                    for k in 0..<4 {
                        let lowByte = k % 2 == 0 ? lowFirst : lowSecond
                        let nibble = k < 2 ? lowByte & 0x0F : lowByte >> 4
                        let quant = Int(nibble | ((high >> UInt8(2 * k)) & 3) << 4) - 32
                        let groupScale = Float(scales.load(fromByteOffset: group + 2 * k, as: Int8.self))
                        out[128 * half + 32 * k + l] = scale * groupScale * Float(quant)
                    }
                }
            }
        }
    }

    /// `block_q8_K` (292 bytes): **f32** d (not f16, unlike every other block), i8 qs[256], i16 bsums[16];
    /// x = d·q. The block sums only speed up ggml's dot products and play no part in dequantisation.
    static func dequantiseQ8_K(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 292
            let scale = Float(bitPattern: UInt32(littleEndian: blockBase.loadUnaligned(as: UInt32.self)))
            let out = destination + block * superBlockElements
            for j in 0..<superBlockElements {
                out[j] = scale * Float(blockBase.load(fromByteOffset: 4 + j, as: Int8.self))
            }
        }
    }
}
