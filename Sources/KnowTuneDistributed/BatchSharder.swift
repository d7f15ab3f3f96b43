// Implements splitting one global batch over ranks by token count (longest first, each to the least-loaded rank)
// and a rank's share into micro-batches under a token budget; does not communicate. Every rank computes the same
// split from the same inputs, so shards are disjoint and no collective is needed to agree on them.

public enum BatchSharder {
    /// Indices (into `tokenCounts`) owned by each of `rankCount` ranks. Deterministic; ties go to the lower rank.
    public static func shard(tokenCounts: [Int], rankCount: Int) -> [[Int]] {
        var shards = [[Int]](repeating: [], count: rankCount)
        var loads = [Int](repeating: 0, count: rankCount)
        let order = tokenCounts.indices.sorted { tokenCounts[$0] != tokenCounts[$1] ? tokenCounts[$0] > tokenCounts[$1] : $0 < $1 }
        for index in order {
            var best = 0
            for rank in 1..<max(rankCount, 1) where loads[rank] < loads[best] { best = rank }
            shards[best].append(index)
            loads[best] += tokenCounts[index]
        }
        return shards.map { $0.sorted() }
    }

    /// Consecutive groups of `indices` whose token sums stay within `budget` (a longer single item stands alone).
    public static func microBatches(_ indices: [Int], tokenCounts: [Int], budget: Int) -> [[Int]] {
        var groups: [[Int]] = []
        var current: [Int] = []
        var load = 0
        for index in indices {
            if !current.isEmpty, load + tokenCounts[index] > budget {
                groups.append(current)
                current = []
                load = 0
            }
            current.append(index)
            load += tokenCounts[index]
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }
}
