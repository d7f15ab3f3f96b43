// Implements the step arithmetic of a run (HF `_inner_training_loop`): global batch, steps per epoch, max steps,
// the log/eval/save cadence (ratios → ceil(max_steps·r)), each step's batch from a seeded per-epoch shuffle and
// the fractional epoch; does not train.
import Foundation
import KnowTuneData
import KnowTuneTensor

public struct StepPlan: Equatable {
    /// per_device_train_batch_size × ranks × gradient_accumulation_steps.
    public let globalBatchSize: Int
    public let stepsPerEpoch: Int
    public let maxSteps: Int
    public let loggingSteps: Int
    public let evalSteps: Int?
    public let saveSteps: Int

    public init(arguments a: TrainingArguments, trainCount: Int, worldSize: Int) throws {
        globalBatchSize = a.training.perDeviceTrainBatchSize * worldSize * a.training.gradientAccumulationSteps
        stepsPerEpoch = max(1, (trainCount + globalBatchSize - 1) / globalBatchSize)
        let total = a.training.maxSteps > 0 ? a.training.maxSteps : max(1, Int((a.training.numTrainEpochs * Double(stepsPerEpoch)).rounded(.up)))
        maxSteps = total
        let perEpoch = stepsPerEpoch
        func absolute(_ value: Double) -> Int {
            value < 1 ? max(1, Int((Double(total) * value).rounded(.up))) : Int(value)
        }
        loggingSteps = absolute(a.training.loggingSteps)
        switch a.training.evaluationStrategy {
        case .steps: evalSteps = absolute(a.training.evalSteps ?? a.training.loggingSteps)
        case .epoch: evalSteps = perEpoch
        case .no: evalSteps = nil
        }
        switch a.training.saveStrategy {
        case .no: saveSteps = Int.max
        case .epoch: saveSteps = perEpoch
        case .steps: saveSteps = absolute(a.training.saveSteps)
        }
        if a.training.loadBestModelAtEnd, let evalSteps, saveSteps % evalSteps != 0 {
            throw KnowTuneError.invalidConfiguration(
                "--load_best_model_at_end needs save steps (\(saveSteps)) to be a multiple of eval steps (\(evalSteps))")
        }
    }

    /// Epoch e's order of the training examples: the same on every rank, a pure function of (seed, e).
    public static func order(epoch: Int, trainCount: Int, seed: Int) -> [Int] {
        ValidationSplit.permutation(count: trainCount, seed: SplitMix64.mix(UInt64(bitPattern: Int64(seed)) &+ UInt64(epoch) &* 0x9E37_79B9))
    }

    /// The training indices of optimizer step `step` (1-based); the last batch of an epoch may be short. With
    /// `groups`, the epoch's order permutes whole groups (a group may still straddle two batches).
    public func batch(forStep step: Int, trainCount: Int, seed: Int, groups: TrainingUnitGroups? = nil) -> [Int] {
        let epoch = (step - 1) / stepsPerEpoch
        let position = (step - 1) % stepsPerEpoch
        let order = groups?.order(epoch: epoch, seed: seed) ?? Self.order(epoch: epoch, trainCount: trainCount, seed: seed)
        let start = position * globalBatchSize
        return Array(order[min(start, trainCount)..<min(start + globalBatchSize, trainCount)])
    }

    /// HF's fractional epoch after `step` steps.
    public func epoch(afterStep step: Int) -> Double { Double(step) / Double(stepsPerEpoch) }
}
