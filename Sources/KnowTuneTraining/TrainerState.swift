// Implements the training loop's mutable state between steps, as one value: what a checkpoint stores and resume
// restores besides the LoRA factors and AdamW's moments (step, best model, loss and metric accumulators); does
// not train or write files.

public struct TrainerState {
    /// The last finished optimizer step.
    public var globalStep = 0
    public var bestMetric: Double?
    public var bestStep: Int?
    public var bestParameters: [Float]?
    public var lossSinceLog: (sum: Double, count: Int) = (0, 0)
    public var trainLossTotal = 0.0
    /// Σ of each per-step metric since the last log, then the number of steps (the objective's metricNames order).
    public var metricsSinceLog: [Double]

    public init(metricCount: Int) {
        metricsSinceLog = [Double](repeating: 0, count: metricCount + 1)
    }

    /// Books a finished step's loss and metrics.
    mutating func record(step: Int, loss: Double, metrics: [Double]) {
        globalStep = step
        lossSinceLog.sum += loss
        lossSinceLog.count += 1
        trainLossTotal += loss
        for (i, value) in metrics.enumerated() { metricsSinceLog[i] += value }
        metricsSinceLog[metrics.count] += 1
    }

    /// The mean loss since the last log; resets it.
    mutating func takeLoggedLoss() -> Double {
        defer { lossSinceLog = (0, 0) }
        return lossSinceLog.sum / Double(max(lossSinceLog.count, 1))
    }

    /// Each metric's mean over the steps since the last log (empty when there were none); resets them.
    mutating func takeLoggedMetrics() -> [Double] {
        let count = metricsSinceLog[metricsSinceLog.count - 1]
        defer { metricsSinceLog = [Double](repeating: 0, count: metricsSinceLog.count) }
        guard count > 0 else { return [] }
        return metricsSinceLog.dropLast().map { $0 / count }
    }

    /// Remembers the adapter of `step` when `metric` beats the best so far.
    mutating func offerBest(metric: Double, step: Int, parameters: [Float], greaterIsBetter: Bool) {
        if let bestMetric, greaterIsBetter ? !(metric > bestMetric) : !(metric < bestMetric) { return }
        bestMetric = metric
        bestStep = step
        bestParameters = parameters
    }
}
