// Implements the start every multi-rank command shares: MPI initialised (a failure is one error and exit 1) and the
// rank's logger; does not parse arguments or run anything.
import ArgumentParser
import KnowTuneDistributed

/// The communicator and logger of a command that runs on every rank.
func startMPIJob() throws -> (communicator: any Communicator, logger: RankLogger) {
    let communicator: any Communicator
    do {
        communicator = try MPICommunicator.start()
    } catch {
        logToStandardError("knowtune: error: \(error)")
        throw ExitCode(1)
    }
    let logger = (try? RankLogger(communicator: communicator))
        ?? RankLogger(rank: communicator.rank, worldSize: communicator.size, hostname: communicator.hostname)
    return (communicator, logger)
}
