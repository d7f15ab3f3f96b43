// Implements the hidden test helper executable that KnowTune's tests launch as a child process (under mpirun, or
// with fault injection); does not belong to the product and is not meant for users.
import Foundation
import KnowTuneDistributed

let usage = """
    usage: knowtune-testkit mpi-selftest <collectives|consensus|local-error|mismatch|watchdog>
           knowtune-testkit checkpoint-crash <folder>
    """

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "mpi-selftest"?:
    guard arguments.count == 2, let scenario = MPISelfTest.Scenario(rawValue: arguments[1]) else {
        FileHandle.standardError.write(Data((usage + "\n").utf8))
        exit(2)
    }
    MPISelfTest.run(scenario)
case "checkpoint-crash"?:
    guard arguments.count == 2 else {
        FileHandle.standardError.write(Data((usage + "\n").utf8))
        exit(2)
    }
    CheckpointCrash.run(folder: arguments[1])
default:
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
