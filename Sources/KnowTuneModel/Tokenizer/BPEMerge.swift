// Implements the merge step both BPE tokenizers share: the key of a symbol pair in their merge tables
// (`pairKey(left, right) → priority << 32 | merged id`) and the heap merge of one word's symbols; does not build
// the tables (byte-level BPE ranks merges by their line, SentencePiece also by piece score).
enum BPEMerge {
    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Merges the pair with the best (lowest) priority, leftmost on ties, until no pair has a merge, in O(n log n):
    /// a heap of `priority << 32 | position` over a linked list of symbols, where an entry is stale once its pair no
    /// longer has that priority. A merged symbol keeps its left position, as in HF's `Word::merge_all` and
    /// llama.cpp's symbol list. Pairs may share a priority (SentencePiece pieces of equal score): then the leftmost
    /// such pair merges first.
    static func mergeWithHeap(_ symbols: inout [Int32], mergeOfPair: [UInt64: UInt64]) {
        let count = symbols.count
        guard count > 1 else { return }
        var next = Array(1...count)
        next[count - 1] = -1
        var previous = Array(-1..<(count - 1))
        var isRemoved = [Bool](repeating: false, count: count)
        var queue = MinHeap()
        func enqueue(_ position: Int, _ right: Int) {
            if let merge = mergeOfPair[pairKey(symbols[position], symbols[right])] {
                queue.push((merge >> 32) << 32 | UInt64(position))
            }
        }
        for position in 0..<(count - 1) { enqueue(position, position + 1) }
        while let entry = queue.pop() {
            let position = Int(entry & 0xFFFF_FFFF)
            let right = next[position]
            guard !isRemoved[position], right >= 0,
                  let merge = mergeOfPair[pairKey(symbols[position], symbols[right])], merge >> 32 == entry >> 32
            else { continue }
            symbols[position] = Int32(bitPattern: UInt32(truncatingIfNeeded: merge))
            isRemoved[right] = true
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight >= 0 { previous[afterRight] = position }
            if previous[position] >= 0 { enqueue(previous[position], position) }
            if afterRight >= 0 { enqueue(position, afterRight) }
        }
        // Position 0 is never the right half of a merge, so the surviving list starts there.
        var merged: [Int32] = []
        var position = 0
        while position >= 0 {
            merged.append(symbols[position])
            position = next[position]
        }
        symbols = merged
    }
}

/// A binary min-heap of merge entries (`priority << 32 | position`).
private struct MinHeap {
    private var entries: [UInt64] = []

    mutating func push(_ entry: UInt64) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child] < entries[parent] else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        guard !entries.isEmpty else { return first }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count, entries[left] < entries[smallest] { smallest = left }
            if right < entries.count, entries[right] < entries[smallest] { smallest = right }
            guard smallest != parent else { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
