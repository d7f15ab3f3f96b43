// Implements the accessors and the CPU-affinity helper declared in KnowTuneMPIShims.h; see there.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include "KnowTuneMPIShims.h"

// Communicators and info.
MPI_Comm kt_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Comm kt_mpi_comm_null(void) { return MPI_COMM_NULL; }
MPI_Info kt_mpi_info_null(void) { return MPI_INFO_NULL; }
int kt_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }

// Datatypes.
MPI_Datatype kt_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype kt_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype kt_mpi_int(void) { return MPI_INT; }
MPI_Datatype kt_mpi_int64(void) { return MPI_INT64_T; }
MPI_Datatype kt_mpi_char(void) { return MPI_CHAR; }
MPI_Datatype kt_mpi_byte(void) { return MPI_BYTE; }

// Reductions.
MPI_Op kt_mpi_sum(void) { return MPI_SUM; }
MPI_Op kt_mpi_max(void) { return MPI_MAX; }
MPI_Op kt_mpi_min(void) { return MPI_MIN; }
void *kt_mpi_in_place(void) { return MPI_IN_PLACE; }

// Requests, status and errors.
MPI_Request kt_mpi_request_null(void) { return MPI_REQUEST_NULL; }
MPI_Status *kt_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
MPI_Errhandler kt_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
int kt_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
int kt_mpi_success(void) { return MPI_SUCCESS; }
int kt_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

int kt_cpu_affinity(int *cpus, int capacity) {
    // Grow the set until the kernel accepts its size (machines with more than CPU_SETSIZE CPUs).
    for (int setSize = CPU_SETSIZE; setSize <= (1 << 20); setSize *= 2) {
        cpu_set_t *set = CPU_ALLOC(setSize);
        if (!set) return -1;
        size_t bytes = CPU_ALLOC_SIZE(setSize);
        CPU_ZERO_S(bytes, set);
        if (sched_getaffinity(0, bytes, set) != 0) {
            int saved = errno;
            CPU_FREE(set);
            if (saved == EINVAL) continue;
            errno = saved;
            return -1;
        }
        int count = 0;
        for (int cpu = 0; cpu < setSize; cpu++) {
            if (CPU_ISSET_S(cpu, bytes, set)) {
                if (count < capacity) cpus[count] = cpu;
                count += 1;
            }
        }
        CPU_FREE(set);
        return count;
    }
    errno = EINVAL;
    return -1;
}
