// Implements the mapping between the training loop's state and a checkpoint's contents (`state.h5`): LoRA factors, AdamW
// moments, step, best model, loss accumulators, metric history, the resolved config and what the run must match on
// resume (format version, world size, model and LoRA shapes); does not do file I/O itself (CheckpointStore).
//
// Layout (h5ls-readable): datasets `lora`, `adam_m`, `adam_v`, `best_lora` (float32, LoRA flat layout, see
// README), `global_step`, `adam_step`, `world_size`, `best_step`, `seed` (int64), `best_metric`,
// `train_loss_total`, `loss_since_log` (float64), plus `<stage>_metrics_since_log` (float64) for an objective
// with per-step metrics (DPO); string attributes `format_version` (`knowtune-sft-1` or `knowtune-dpo-1`), `arguments`,
// `lora_config`, `model_config`, `log_history` (JSON). Every dataset carries a checksum attribute.
import Foundation
import KnowTuneCheckpoint
import KnowTuneModel
import KnowTuneTensor

enum TrainerCheckpoint {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Writes `trainer`'s state at `step`.
    static func write(_ trainer: Trainer, step: Int, to folder: String, store: CheckpointStore) throws {
        let state = trainer.state
        var contents = CheckpointContents()
        contents.tensors["lora"] = CheckpointTensor(trainer.parameters.array)
        contents.tensors["adam_m"] = CheckpointTensor(trainer.optimizer.firstMoment.array)
        contents.tensors["adam_v"] = CheckpointTensor(trainer.optimizer.secondMoment.array)
        if let best = state.bestParameters { contents.tensors["best_lora"] = CheckpointTensor(best) }
        contents.integers["global_step"] = [Int64(step)]
        contents.integers["adam_step"] = [Int64(trainer.optimizer.stepCount)]
        contents.integers["world_size"] = [Int64(trainer.communicator.size)]
        contents.integers["best_step"] = [Int64(state.bestStep ?? -1)]
        contents.integers["seed"] = [Int64(trainer.arguments.training.seed)]
        contents.doubles["best_metric"] = [state.bestMetric ?? .nan]
        contents.doubles["train_loss_total"] = [state.trainLossTotal]
        contents.doubles["loss_since_log"] = [state.lossSinceLog.sum, Double(state.lossSinceLog.count)]
        contents.doubles["elapsed_seconds"] = [trainer.log?.elapsed ?? 0]
        if !trainer.objective.metricNames.isEmpty { contents.doubles[trainer.metricsCheckpointName] = state.metricsSinceLog }
        contents.attributes["format_version"] = trainer.checkpointFormat
        contents.attributes["arguments"] = try json(trainer.arguments)
        contents.attributes["lora_config"] = try json(trainer.parameters.layout.configuration)
        contents.attributes["model_config"] = try json(trainer.model.configuration)
        contents.attributes["log_history"] = try json(trainer.log?.history ?? [])
        _ = try store.write(contents, to: folder)
    }

    /// Reads `folder` into `trainer`'s parameters and optimizer and returns the loop state to continue with,
    /// refusing a checkpoint of another model, LoRA config, world size or objective.
    static func restore(_ trainer: Trainer, from folder: String) throws -> TrainerState {
        let contents = try CheckpointStore().read(from: folder)
        let path = (folder as NSString).appendingPathComponent(CheckpointStore.defaultFileName)
        func integer(_ name: String) throws -> Int {
            guard let value = contents.integers[name]?.first else { throw KnowTuneError.badFormat(path: path, reason: "missing \(name)") }
            return Int(value)
        }
        func double(_ name: String) throws -> [Double] {
            guard let value = contents.doubles[name] else { throw KnowTuneError.badFormat(path: path, reason: "missing \(name)") }
            return value
        }
        func tensor(_ name: String, count: Int) throws -> [Float] {
            guard let value = contents.tensors[name]?.values, value.count == count else {
                throw KnowTuneError.badFormat(path: path, reason: "\(name) is missing or has the wrong size for this LoRA layout")
            }
            return value
        }
        guard contents.attributes["format_version"] == trainer.checkpointFormat else {
            throw KnowTuneError.badFormat(path: path, reason: "not a KnowTune \(trainer.objective.stage.uppercased()) checkpoint (format \(contents.attributes["format_version"] ?? "none"), expected \(trainer.checkpointFormat))")
        }
        guard contents.attributes["model_config"] == (try json(trainer.model.configuration)) else {
            throw KnowTuneError.invalidConfiguration("\(path) was written for another model (\(contents.attributes["model_config"] ?? "?")); this run uses \(trainer.arguments.model.modelNameOrPath)")
        }
        guard contents.attributes["lora_config"] == (try json(trainer.parameters.layout.configuration)) else {
            throw KnowTuneError.invalidConfiguration("\(path) holds a LoRA of another configuration (\(contents.attributes["lora_config"] ?? "?"))")
        }
        let worldSize = try integer("world_size")
        guard worldSize == trainer.communicator.size else {
            throw KnowTuneError.invalidConfiguration(
                "\(path) was written by \(worldSize) rank(s); resume with the same number (this job has \(trainer.communicator.size)) so the data order and results match")
        }
        let count = trainer.parameters.count
        let lora = try tensor("lora", count: count)
        var state = TrainerState(metricCount: trainer.objective.metricNames.count)
        if !trainer.objective.metricNames.isEmpty {
            let metrics = try double(trainer.metricsCheckpointName)
            guard metrics.count == state.metricsSinceLog.count else {
                throw KnowTuneError.badFormat(path: path, reason: "\(trainer.metricsCheckpointName) has the wrong size")
            }
            state.metricsSinceLog = metrics
        }
        let bestStep = try integer("best_step")
        state.bestStep = bestStep >= 0 ? bestStep : nil
        let bestMetric = try double("best_metric").first ?? .nan
        state.bestMetric = bestMetric.isNaN ? nil : bestMetric
        state.bestParameters = contents.tensors["best_lora"]?.values
        state.trainLossTotal = try double("train_loss_total").first ?? 0
        let sinceLog = try double("loss_since_log")
        state.lossSinceLog = (sinceLog.first ?? 0, Int(sinceLog.last ?? 0))
        state.globalStep = try integer("global_step")
        let optimizerState = (step: try integer("adam_step"), first: try tensor("adam_m", count: count), second: try tensor("adam_v", count: count))
        // Everything is read and checked: now change the trainer.
        lora.withUnsafeBufferPointer { trainer.parameters.values.update(from: $0.baseAddress!, count: count) }
        trainer.optimizer.restore(step: optimizerState.step, firstMoment: optimizerState.first, secondMoment: optimizerState.second)
        if let log = trainer.log, let history = contents.attributes["log_history"] {
            let entries = try JSONDecoder().decode([LogEntry].self, from: Data(history.utf8))
            log.restore(history: entries, elapsed: contents.doubles["elapsed_seconds"]?.first ?? 0, step: state.globalStep)
        }
        return state
    }
}
