// Implements the `knowtune` command line: the subcommands and the error/exit policy; does not implement any
// stage itself (the library targets do).
import ArgumentParser
import Foundation
import KnowTuneTensor

@main
struct KnowTuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knowtune",
        abstract: "LoRA fine-tuning of LLaMA-family models with the KnowTuning method, data-parallel over MPI.",
        subcommands: [TrainCommand.self, ScoreCommand.self, TokenizeCommand.self, MetricsCommand.self, ExportCommand.self, ChatCommand.self,
                      BuildKACommand.self, BuildKCCommand.self, JudgeCommand.self, APICommand.self])

    /// OpenBLAS's kernels are chosen before any subcommand runs a product.
    static func main() {
        OpenBLASCore.chooseKernels()
        main(nil)
    }
}

/// Writes a line to stderr (stdout carries only machine-readable results).
func logToStandardError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Turns library errors into one clear message and a non-zero exit.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as KnowTuneError {
        logToStandardError("knowtune: error: \(error)")
        throw ExitCode(1)
    }
}
