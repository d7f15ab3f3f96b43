// Implements the hidden test helper executable that KnowTune's tests launch as a child process (under mpirun, or
// with fault injection); does not belong to the product and is not meant for users.
import Foundation
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

let usage = """
    usage: knowtune-testkit mpi-selftest <collectives|consensus|local-error|mismatch|watchdog>
           knowtune-testkit checkpoint-crash <folder>
           knowtune-testkit make-model --shape llama2-7b|llama2-13b|tiny-llama [--layers N] --type q8_0|q4_0|q4_k|f16 --seed S --output FILE
           knowtune-testkit cache-base --model PATH --base_dtype T [--cache DIR]
    """

OpenBLASCore.chooseKernels()  // before any product: OpenBLAS's kernel table is process-wide
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
case "make-model"?, "cache-base"?:
    do {
        if arguments[0] == "make-model" { try ModelMaking.makeModel(Array(arguments.dropFirst())) }
        else { try ModelMaking.cacheBase(Array(arguments.dropFirst())) }
    } catch {
        FileHandle.standardError.write(Data("knowtune-testkit: \(error)\n".utf8))
        exit(1)
    }
default:
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
