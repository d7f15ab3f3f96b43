// Implements what the training loop reports (typed events) and the consumers that turn them into output:
// trainer_log.jsonl and the results files (TrainingLog), rank 0's log lines, the terminal progress bar and the loss
// plots. The loop decides when something happens; consumers decide how it looks. Does not compute anything.
import Foundation
import KnowTuneDistributed

/// A logged training step: the mean loss since the last log and the step's figures.
public struct StepLog {
    public var step: Int
    public var maxSteps: Int
    public var epoch: Double
    /// Mean loss since the last log (HF logs it rounded to 4 decimals).
    public var loss: Double
    public var gradientNorm: Double
    public var learningRate: Double
    /// Units (tokens, pairs) per second since the run started.
    public var throughput: Double
    public var unit: ThroughputUnit
    /// The objective's metrics averaged since the last log, in the objective's order.
    public var metrics: [(name: String, value: Double)]
    public var metricsInLogLine: [String]
}

/// An evaluation of the validation set during or after training.
public struct EvaluationLog {
    public var step: Int
    public var maxSteps: Int
    public var epoch: Double
    public var loss: Double
    public var seconds: Double
    public var samples: Int
    /// Samples per second divided by the global eval batch (HF's eval_steps_per_second).
    public var evalBatchSize: Int
    /// After training (or with --do_eval alone): eval_results.json with perplexity.
    public var isFinal: Bool
}

public enum TrainingEvent {
    case started(summary: String)
    /// After every optimizer step (progress display).
    case stepFinished(step: Int, maxSteps: Int, loss: Double, learningRate: Double, throughput: Double, unit: ThroughputUnit)
    case stepLogged(StepLog)
    case evaluated(EvaluationLog)
    case checkpointSaved(step: Int, folder: String)
    case bestRestored(step: Int, metricName: String, value: Double)
    /// A SIGTERM/SIGUSR1 stop, after its checkpoint.
    case stopped(step: Int)
    /// The run's train metrics (train_results.json).
    case finished(step: Int, epoch: Double, maxSteps: Int, metrics: [String: Double])
    /// Nothing more will be logged (the final evaluation included).
    case ended
}

public protocol TrainingEventConsumer: AnyObject {
    func handle(_ event: TrainingEvent) throws
}

/// Rank 0's INFO lines.
final class TrainingLogLines: TrainingEventConsumer {
    let logger: RankLogger

    init(logger: RankLogger) { self.logger = logger }

    func handle(_ event: TrainingEvent) {
        switch event {
        case let .started(summary):
            logger.info(summary)
        case let .stepLogged(log):
            let metrics = log.metricsInLogLine.compactMap { name in
                log.metrics.first { $0.name == name }.map { String(format: "  %@ %.4f", name, $0.value) }
            }.joined()
            logger.info(String(format: "step %d/%d  loss %.4f  grad_norm %.3f  lr %.3e%@  %.*f %@  epoch %.2f", log.step, log.maxSteps,
                               log.loss, log.gradientNorm, log.learningRate, metrics, Int32(log.unit.decimals),
                               log.throughput, log.unit.abbreviation, log.epoch))
        case let .evaluated(log):
            if log.isFinal {
                logger.info(String(format: "eval_loss %.4f  perplexity %.3f", log.loss, exp(log.loss)))
            } else {
                logger.info(String(format: "eval at step %d: eval_loss %.4f (%.1fs)", log.step, log.loss, log.seconds))
            }
        case let .checkpointSaved(_, folder):
            logger.info("saved \(folder)")
        case let .bestRestored(step, name, value):
            logger.info("loaded the best adapter (step \(step), \(name) \(value))")
        case let .stopped(step):
            logger.info("stop requested (SIGTERM/SIGUSR1): checkpoint-\(step) written; resume with --resume_from_checkpoint latest")
        case .stepFinished, .finished, .ended:
            break
        }
    }
}

extension ProgressBar: TrainingEventConsumer {
    func handle(_ event: TrainingEvent) {
        switch event {
        case let .stepFinished(step, _, loss, rate, throughput, unit):
            update(step: step, loss: loss, learningRate: rate, throughput: String(format: "%.1f %@", throughput, unit.abbreviation))
        default:
            // Any other event prints a line: clear the bar first; the next step redraws it.
            clear()
        }
    }
}

extension TrainingLog: TrainingEventConsumer {
    public func handle(_ event: TrainingEvent) throws {
        switch event {
        case let .stepLogged(log):
            let scale = pow(10, Double(log.unit.decimals))
            var metrics: [String: Double] = [
                "loss": (log.loss * 10000).rounded() / 10000, "grad_norm": log.gradientNorm, "learning_rate": log.learningRate,
                "\(log.unit.name)_per_second": (log.throughput * scale).rounded() / scale,
            ]
            for metric in log.metrics { metrics[metric.name] = metric.value }
            record(LogEntry(step: log.step, epoch: log.epoch, metrics: metrics), currentStep: log.step, totalSteps: log.maxSteps)
        case let .evaluated(log):
            let samplesPerSecond = Double(log.samples) / max(log.seconds, 1e-9)
            var metrics: [String: Double] = [
                "eval_loss": log.loss, "eval_runtime": (log.seconds * 10000).rounded() / 10000,
                "eval_samples_per_second": (samplesPerSecond * 1000).rounded() / 1000,
            ]
            if log.isFinal {
                metrics["epoch"] = log.epoch
                metrics["perplexity"] = exp(log.loss)
            } else {
                metrics["eval_steps_per_second"] = (samplesPerSecond / Double(max(log.evalBatchSize, 1)) * 1000).rounded() / 1000
            }
            record(LogEntry(step: log.step, epoch: log.epoch, metrics: metrics), currentStep: log.step, totalSteps: log.maxSteps)
            if log.isFinal { try writeResults(metrics, split: "eval") }
        case let .finished(step, epoch, maxSteps, metrics):
            record(LogEntry(step: step, epoch: epoch, metrics: metrics), currentStep: step, totalSteps: maxSteps)
            try writeResults(metrics, split: "train")
        case .started, .stepFinished, .checkpointSaved, .bestRestored, .stopped, .ended:
            break
        }
    }
}

/// `--plot_loss`: the loss plots once everything is logged (rank 0).
final class LossPlotter: TrainingEventConsumer {
    let log: TrainingLog
    let logger: RankLogger
    let loggingSteps: Int

    init(log: TrainingLog, logger: RankLogger, loggingSteps: Int) {
        self.log = log
        self.logger = logger
        self.loggingSteps = loggingSteps
    }

    func handle(_ event: TrainingEvent) {
        guard case .ended = event else { return }
        if log.plotLosses().isEmpty { logger.warning("no loss values to plot (logging_steps \(loggingSteps) > steps?)") }
    }
}
