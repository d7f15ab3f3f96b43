// Implements splitting one global batch over ranks by cost (longest processing time first, each item to the
// least-loaded rank, then moves and swaps that lower the busiest rank's load) and a rank's share into micro-batches
// under a token budget; does not communicate. Every rank computes the same split from the same inputs, so shards are
// disjoint and no collective is needed to agree on them.
//
// Why the refinement: a step waits for its busiest rank, and a global batch of 8 has only 4 items per rank of 2, so
// greedy placement alone left SmolLM2 SFT's ranks 4.4 % apart on average (dolly, 2 × 1 thread, 32 steps).

public enum BatchSharder {
    /// Indices (into `tokenCounts`) owned by each of `rankCount` ranks, balanced by token count.
    public static func shard(tokenCounts: [Int], rankCount: Int) -> [[Int]] {
        shard(costs: tokenCounts.map(Double.init), rankCount: rankCount)
    }

    /// Indices (into `costs`) owned by each of `rankCount` ranks. Deterministic; ties go to the lower rank and index.
    public static func shard(costs: [Double], rankCount: Int) -> [[Int]] {
        let ranks = max(rankCount, 1)
        var shards = [[Int]](repeating: [], count: ranks)
        var loads = [Double](repeating: 0, count: ranks)
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        for index in order {
            var best = 0
            for rank in 1..<ranks where loads[rank] < loads[best] { best = rank }
            shards[best].append(index)
            loads[best] += costs[index]
        }
        // Each round lowers the busiest rank's load strictly, so the rounds end; the bound only caps the cost.
        for _ in 0..<(4 * costs.count) {
            guard let change = bestChange(shards: shards, loads: loads, costs: costs) else { break }
            shards[change.busiest].remove(at: change.item)
            if let partner = change.partnerItem {
                let taken = shards[change.other].remove(at: partner)
                shards[change.busiest].append(taken)
            }
            shards[change.other].append(change.movedIndex)
            loads[change.busiest] = change.busiestLoad
            loads[change.other] = change.otherLoad
        }
        return shards.map { $0.sorted() }
    }

    private struct Change {
        let busiest: Int, other: Int
        /// Position in the busiest shard of the item that leaves it, its index, and the position of the item it swaps with.
        let item: Int, movedIndex: Int, partnerItem: Int?
        let busiestLoad: Double, otherLoad: Double
        var worse: Double { max(busiestLoad, otherLoad) }
    }

    /// The move of one item from the busiest rank to another, or swap of one item each, that leaves the larger of
    /// the two loads lowest, if any lowers it below the busiest load.
    private static func bestChange(shards: [[Int]], loads: [Double], costs: [Double]) -> Change? {
        var busiest = 0
        for rank in loads.indices where loads[rank] > loads[busiest] { busiest = rank }
        // A change must gain more than rounding, or equal costs could trade places forever.
        let tolerance = 1e-9 * max(loads[busiest], 1)
        var best: Change?
        func consider(_ change: Change) {
            guard change.worse < loads[busiest] - tolerance else { return }
            if best == nil || change.worse < best!.worse - tolerance { best = change }
        }
        for other in loads.indices where other != busiest {
            for (item, index) in shards[busiest].enumerated() {
                consider(Change(busiest: busiest, other: other, item: item, movedIndex: index, partnerItem: nil,
                                busiestLoad: loads[busiest] - costs[index], otherLoad: loads[other] + costs[index]))
                for (partner, partnerIndex) in shards[other].enumerated() where costs[partnerIndex] < costs[index] {
                    let delta = costs[index] - costs[partnerIndex]
                    consider(Change(busiest: busiest, other: other, item: item, movedIndex: index, partnerItem: partner,
                                    busiestLoad: loads[busiest] - delta, otherLoad: loads[other] + delta))
                }
            }
        }
        return best
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
