// Implements accessors for Open MPI's C macros that Swift cannot import (handles, datatypes, operations, constants)
// and this thread's CPU affinity (the CPU_* macros); does not wrap any other behaviour. Each accessor returns exactly
// what the macro names.
#ifndef KNOWTUNE_MPI_SHIMS_H
#define KNOWTUNE_MPI_SHIMS_H

#include <mpi.h>

// MPI handles: in Open MPI these are addresses of library globals behind macros.
MPI_Comm kt_mpi_comm_world(void);
MPI_Comm kt_mpi_comm_null(void);
MPI_Datatype kt_mpi_float(void);
MPI_Datatype kt_mpi_double(void);
MPI_Datatype kt_mpi_int(void);
MPI_Datatype kt_mpi_int64(void);
MPI_Datatype kt_mpi_char(void);
MPI_Datatype kt_mpi_byte(void);
MPI_Op kt_mpi_sum(void);
MPI_Op kt_mpi_max(void);
MPI_Op kt_mpi_min(void);
void *kt_mpi_in_place(void);
MPI_Info kt_mpi_info_null(void);
int kt_mpi_comm_type_shared(void);
int kt_mpi_success(void);
int kt_mpi_thread_funneled(void);
MPI_Request kt_mpi_request_null(void);
MPI_Status *kt_mpi_status_ignore(void);
MPI_Errhandler kt_mpi_errors_return(void);
int kt_mpi_max_error_string(void);

// Writes up to `capacity` CPU ids of this thread's affinity mask into `cpus`, ascending; returns how many
// CPUs the mask holds (may exceed `capacity`), or -1 with errno set.
int kt_cpu_affinity(int *cpus, int capacity);

#endif
