// Implements rank 0's one-line progress bar (step, loss, learning rate, throughput, ETA), redrawn in place when
// stderr is a terminal and silent otherwise (log files get the plain per-log-step lines instead).
import Foundation

final class ProgressBar {
    let total: Int
    let isEnabled: Bool
    private let started = Date()
    private var firstStep: Int?
    private var drawn = false

    init(total: Int, isMainRank: Bool) {
        self.total = total
        isEnabled = isMainRank && isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// Redraws the bar after optimizer step `step`; `throughput` is already formatted ("312.4 tok/s").
    func update(step: Int, loss: Double, learningRate: Double, throughput: String) {
        guard isEnabled else { return }
        let first = firstStep ?? step
        firstStep = first
        let done = Double(step - first + 1)
        let remaining = Double(total - step) * Date().timeIntervalSince(started) / max(done, 1)
        let width = 24
        let filled = min(width, Int(Double(width) * Double(step) / Double(max(total, 1))))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "%@ %d/%d  loss %.4f  lr %.2e  %@  ETA %@", bar, step, total, loss, learningRate, throughput,
                          TrainingLog.clock(remaining))
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    /// Clears the bar so that a log line can be printed; the next update redraws it.
    func clear() {
        guard isEnabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}
