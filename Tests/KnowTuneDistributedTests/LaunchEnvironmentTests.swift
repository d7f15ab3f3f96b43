// Implements the tests of launcher detection and of the collective options read from the environment; does not
// start MPI.
import KnowTuneDistributed
import KnowTuneTensor
import XCTest

final class LaunchEnvironmentTests: XCTestCase {
    func testDetectsLaunchers() throws {
        XCTAssertEqual(try LaunchEnvironment.launcher([:]), LaunchEnvironment.Launcher.none)
        XCTAssertEqual(try LaunchEnvironment.launcher(["OMPI_COMM_WORLD_SIZE": "1"]), .openMPI)
        XCTAssertEqual(try LaunchEnvironment.launcher(["PMIX_RANK": "0"]), .pmix)
        XCTAssertEqual(try LaunchEnvironment.launcher(["PMI_RANK": "3", "PMI_SIZE": "4"]), .pmi)
        XCTAssertEqual(try LaunchEnvironment.launcher(["SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4"]), .slurm)
        // An sbatch script (one task of a 4-task allocation) is not a 4-rank job step.
        XCTAssertEqual(try LaunchEnvironment.launcher(["SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "1"]), .none)
        XCTAssertEqual(try LaunchEnvironment.launcher(["SLURM_PROCID": "0", "SLURM_NTASKS": "1"]), .none)
    }

    func testExpectedWorldSize() {
        XCTAssertNil(LaunchEnvironment.expectedWorldSize([:]))
        XCTAssertEqual(LaunchEnvironment.expectedWorldSize(["OMPI_COMM_WORLD_SIZE": "2"]), 2)
        XCTAssertEqual(LaunchEnvironment.expectedWorldSize(["PMI_RANK": "0", "PMI_SIZE": "8"]), 8)
        XCTAssertEqual(LaunchEnvironment.expectedWorldSize(["SLURM_PROCID": "1", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "4"]), 4)
        XCTAssertNil(LaunchEnvironment.expectedWorldSize(["SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "1"]))
    }

    func testOverride() throws {
        XCTAssertEqual(try LaunchEnvironment.launcher(["KNOWTUNE_MPI": "never", "OMPI_COMM_WORLD_SIZE": "2"]), .none)
        XCTAssertEqual(try LaunchEnvironment.launcher(["KNOWTUNE_MPI": "always"]), .openMPI)
        XCTAssertThrowsError(try LaunchEnvironment.launcher(["KNOWTUNE_MPI": "sometimes"]))
    }

    func testStartWithoutLauncherIsOneRankWithoutMPI() throws {
        let communicator = try MPICommunicator.start(environment: [:])
        XCTAssertTrue(communicator is SingleProcessCommunicator)
        XCTAssertEqual(communicator.size, 1)
    }

    func testCollectiveOptions() throws {
        XCTAssertEqual(try CollectiveOptions(environment: [:]), CollectiveOptions(timeout: 1800, checkCollectives: false))
        XCTAssertEqual(try CollectiveOptions(environment: ["KNOWTUNE_COLLECTIVE_TIMEOUT": "2.5", "KNOWTUNE_CHECK_COLLECTIVES": "1"]),
                       CollectiveOptions(timeout: 2.5, checkCollectives: true))
        XCTAssertNil(try CollectiveOptions(environment: ["KNOWTUNE_COLLECTIVE_TIMEOUT": "off"]).timeout)
        XCTAssertNil(try CollectiveOptions(environment: ["KNOWTUNE_COLLECTIVE_TIMEOUT": "0"]).timeout)
        XCTAssertThrowsError(try CollectiveOptions(environment: ["KNOWTUNE_COLLECTIVE_TIMEOUT": "soon"])) { error in
            XCTAssertEqual(error as? KnowTuneError,
                           .invalidConfiguration("KNOWTUNE_COLLECTIVE_TIMEOUT=soon (expected seconds >= 0, or off)"))
        }
        XCTAssertThrowsError(try CollectiveOptions(environment: ["KNOWTUNE_CHECK_COLLECTIVES": "yes please"]))
    }
}
