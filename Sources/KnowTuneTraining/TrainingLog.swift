// Implements what a run writes beside its adapter, as LLaMA-Factory/HF do: `trainer_log.jsonl` (LLaMA-Factory's 11
// keys first), `trainer_state.json` (log_history), `*_results.json` and loss plots; does not decide when to log.
// Only rank 0 owns one.
import Foundation
import KnowTuneData
import KnowTuneTensor

/// One entry of HF's `log_history`: numeric metrics plus the step.
public struct LogEntry: Codable, Equatable {
    public var step: Int
    public var epoch: Double
    public var metrics: [String: Double]

    public init(step: Int, epoch: Double, metrics: [String: Double]) {
        self.step = step
        self.epoch = epoch
        self.metrics = metrics
    }

    var jsonObject: [String: Any] {
        var object: [String: Any] = metrics
        object["step"] = step
        object["epoch"] = (epoch * 100).rounded() / 100
        return object
    }
}

public final class TrainingLog {
    public let outputDirectory: String
    public let startTime = Date()
    public private(set) var history: [LogEntry] = []
    /// Elapsed seconds carried over from the interrupted part of a resumed run.
    public var previousElapsed: Double = 0

    public init(outputDirectory: String, history: [LogEntry] = []) {
        self.outputDirectory = outputDirectory
        self.history = history
    }

    var elapsed: Double { previousElapsed + Date().timeIntervalSince(startTime) }

    /// Continues a resumed run's history and clock, dropping `trainer_log.jsonl` lines of steps after the
    /// checkpoint (they will be run again).
    public func restore(history: [LogEntry], elapsed: Double, step: Int) {
        self.history = history
        previousElapsed = elapsed
        let file = path("trainer_log.jsonl")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return }
        let kept = text.split(separator: "\n").filter { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return ((object?["current_steps"] as? Int) ?? Int.max) <= step
        }
        try? (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(toFile: file, atomically: true, encoding: .utf8)
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(max(0, seconds))
        return String(format: "%d:%02d:%02d", total / 3600, (total / 60) % 60, total % 60)
    }

    private func path(_ name: String) -> String { (outputDirectory as NSString).appendingPathComponent(name) }

    /// Records an entry in the history and appends its `trainer_log.jsonl` line.
    public func record(_ entry: LogEntry, currentStep: Int, totalSteps: Int) {
        history.append(entry)
        let percentage = totalSteps > 0 ? (Double(currentStep) / Double(totalSteps) * 10000).rounded() / 100 : 100
        let remaining = currentStep > 0 ? Double(totalSteps - currentStep) * elapsed / Double(currentStep) : 0
        func value(_ key: String) -> String {
            guard let number = entry.metrics[key] else { return "null" }
            return Self.number(number)
        }
        // LLaMA-Factory's `LogCallback.on_log` keys, in its order, then every other metric of the event.
        var fields = [
            "\"current_steps\": \(currentStep)", "\"total_steps\": \(totalSteps)", "\"loss\": \(value("loss"))",
            "\"eval_loss\": \(value("eval_loss"))", "\"predict_loss\": \(value("predict_loss"))",
            "\"reward\": \(value("reward"))", "\"learning_rate\": \(value("learning_rate"))",
            "\"epoch\": \(Self.number((entry.epoch * 100).rounded() / 100))", "\"percentage\": \(Self.number(percentage))",
            "\"elapsed_time\": \"\(Self.clock(elapsed))\"", "\"remaining_time\": \"\(Self.clock(remaining))\"",
        ]
        let standard: Set<String> = ["loss", "eval_loss", "predict_loss", "reward", "learning_rate"]
        for key in entry.metrics.keys.sorted() where !standard.contains(key) {
            fields.append("\"\(key)\": \(Self.number(entry.metrics[key] ?? 0))")
        }
        appendLine("{" + fields.joined(separator: ", ") + "}", to: path("trainer_log.jsonl"))
    }

    static func number(_ value: Double) -> String {
        if !value.isFinite { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(format: "%.1f", value) }
        return "\(value)"
    }

    private func appendLine(_ line: String, to file: String) {
        let data = Data((line + "\n").utf8)
        if let handle = FileHandle(forWritingAtPath: file) {
            handle.seekToEndOfFile()
            handle.write(data)
            handle.closeFile()
        } else if !FileManager.default.createFile(atPath: file, contents: data) {
            // The log is a record, not state: training goes on, and the checkpoint save reports a full disk.
            FileHandle.standardError.write(Data("knowtune: warning: cannot write \(file)\n".utf8))
        }
    }

    /// HF `TrainerState.save_to_json` (indent 2, sorted keys).
    public func writeState(to folder: String, globalStep: Int, maxSteps: Int, epoch: Double, bestMetric: Double?,
                           bestCheckpoint: String?, loggingSteps: Double, evalSteps: Int?, saveSteps: Int,
                           trainBatchSize: Int, numTrainEpochs: Double) throws {
        let state: [String: Any] = [
            "best_metric": bestMetric.map { $0 as Any } ?? NSNull(), "best_model_checkpoint": bestCheckpoint.map { $0 as Any } ?? NSNull(),
            "epoch": epoch, "eval_steps": evalSteps.map { $0 as Any } ?? NSNull(), "global_step": globalStep,
            "is_hyper_param_search": false, "is_local_process_zero": true, "is_world_process_zero": true,
            "log_history": history.map(\.jsonObject), "logging_steps": loggingSteps, "max_steps": maxSteps,
            "num_input_tokens_seen": 0, "num_train_epochs": Int(numTrainEpochs.rounded(.up)), "save_steps": saveSteps,
            "total_flos": 0, "train_batch_size": trainBatchSize, "trial_name": NSNull(), "trial_params": NSNull(),
        ]
        try RunResults.writeJSON(state, to: (folder as NSString).appendingPathComponent("trainer_state.json"))
    }

    /// HF `save_metrics`: `<split>_results.json` and the merged `all_results.json`.
    public func writeResults(_ metrics: [String: Double], split: String) throws {
        try RunResults.write(metrics, split: split, in: outputDirectory)
    }

    /// LLaMA-Factory `plot_loss`: `training_<key>.svg` with the raw curve and its TensorBoard-style EMA, for each key
    /// that has values (a key without any is skipped, as there).
    public func plotLosses(keys: [String] = ["loss", "eval_loss"]) -> [String] {
        var written: [String] = []
        for key in keys {
            let points = history.compactMap { entry in entry.metrics[key].map { (Double(entry.step), $0) } }
            guard points.count >= 1 else { continue }
            let weight = 1.8 * (1 / (1 + exp(-0.05 * Double(points.count))) - 0.5)
            var smoothed: [Double] = []
            for (index, point) in points.enumerated() {
                smoothed.append(index == 0 ? point.1 : weight * smoothed[index - 1] + (1 - weight) * point.1)
            }
            let file = path("training_\(key).svg")
            let svg = LossPlot.svg(title: "training \(key) of \(outputDirectory)", yLabel: key, steps: points.map(\.0),
                                   raw: points.map(\.1), smoothed: smoothed)
            if (try? svg.write(toFile: file, atomically: true, encoding: .utf8)) != nil { written.append(file) }
        }
        return written
    }
}

/// A self-contained SVG line chart (no plotting library on the machine).
enum LossPlot {
    static func svg(title: String, yLabel: String, steps: [Double], raw: [Double], smoothed: [Double]) -> String {
        let width = 640.0, height = 480.0, left = 70.0, right = 20.0, top = 40.0, bottom = 50.0
        let minX = steps.min() ?? 0, maxX = max(steps.max() ?? 1, minX + 1)
        let minY = min(raw.min() ?? 0, smoothed.min() ?? 0), maxY = max(max(raw.max() ?? 1, smoothed.max() ?? 1), minY + 1e-9)
        func x(_ v: Double) -> Double { left + (v - minX) / (maxX - minX) * (width - left - right) }
        func y(_ v: Double) -> Double { height - bottom - (v - minY) / (maxY - minY) * (height - top - bottom) }
        func path(_ values: [Double]) -> String {
            zip(steps, values).map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
        }
        var ticks = ""
        for i in 0...4 {
            let value = minY + (maxY - minY) * Double(i) / 4
            ticks += String(format: "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3f</text>", left - 6, y(value) + 4, value)
            let step = minX + (maxX - minX) * Double(i) / 4
            ticks += String(format: "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">%.0f</text>", x(step), height - bottom + 16, step)
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" font-size="14" text-anchor="middle">\(title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;"))</text>
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
            \(ticks)
            <text x="\(width / 2)" y="\(height - 12)" font-size="12" text-anchor="middle">step</text>
            <text x="16" y="\(height / 2)" font-size="12" text-anchor="middle" transform="rotate(-90 16 \(height / 2))">\(yLabel)</text>
            <polyline fill="none" stroke="#1f77b4" stroke-opacity="0.4" stroke-width="1.5" points="\(path(raw))"/>
            <polyline fill="none" stroke="#1f77b4" stroke-width="2" points="\(path(smoothed))"/>
            <text x="\(width - right - 90)" y="\(top + 14)" font-size="11" fill="#1f77b4" fill-opacity="0.6">original</text>
            <text x="\(width - right - 90)" y="\(top + 28)" font-size="11" fill="#1f77b4">smoothed</text>
            </svg>
            """
    }
}
