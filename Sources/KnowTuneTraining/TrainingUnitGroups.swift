// Implements groups of training units that must stay together (e.g. the preference pairs of one prompt, so that the
// sequences they share are computed once): an epoch's order permutes whole groups, and the units of one group in a
// global batch go to one rank and one micro-batch. With every unit alone, the order is exactly the ungrouped one.
// Does not shard or train.
import KnowTuneData
import KnowTuneTensor

public struct TrainingUnitGroups: Equatable {
    /// Group of each unit: dense ids in order of first appearance.
    public let groupOfUnit: [Int]
    /// Units of each group, ascending.
    public let members: [[Int]]

    /// Units with equal keys form one group.
    public init<Key: Hashable>(keys: [Key]) {
        var ids: [Key: Int] = [:]
        var groupOfUnit: [Int] = []
        var members: [[Int]] = []
        groupOfUnit.reserveCapacity(keys.count)
        for (unit, key) in keys.enumerated() {
            if let id = ids[key] {
                groupOfUnit.append(id)
                members[id].append(unit)
            } else {
                ids[key] = members.count
                groupOfUnit.append(members.count)
                members.append([unit])
            }
        }
        self.groupOfUnit = groupOfUnit
        self.members = members
    }

    public var unitCount: Int { groupOfUnit.count }
    public var groupCount: Int { members.count }
    /// Whether some group holds more than one unit.
    public var hasSharedGroups: Bool { groupCount < unitCount }

    /// Epoch e's order of the units: a seeded permutation of the groups, each group's units in their own order.
    /// With every unit alone this is StepPlan's ungrouped order.
    public func order(epoch: Int, seed: Int) -> [Int] {
        StepPlan.order(epoch: epoch, trainCount: groupCount, seed: seed).flatMap { members[$0] }
    }

    /// Positions in `batch` (unit indices) clustered by group, clusters in order of first appearance.
    public func clusters(of batch: [Int]) -> [[Int]] {
        var clusterOfGroup: [Int: Int] = [:]
        var clusters: [[Int]] = []
        for (position, unit) in batch.enumerated() {
            let group = groupOfUnit[unit]
            if let cluster = clusterOfGroup[group] {
                clusters[cluster].append(position)
            } else {
                clusterOfGroup[group] = clusters.count
                clusters.append([position])
            }
        }
        return clusters
    }
}
