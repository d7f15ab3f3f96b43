// Implements accessors for C macros that Swift cannot import (Open MPI handles, HDF5 type and flag
// constants), plus three helpers that need C (see the last section); does not wrap any other behaviour.
// Each accessor returns exactly what the macro names.
#ifndef KNOWTUNE_SHIMS_H
#define KNOWTUNE_SHIMS_H

#include <mpi.h>
#include <hdf5.h>

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

// HDF5 type ids and flags (the type ids are run-time globals that need H5open first).
hid_t kt_h5t_native_float(void);
hid_t kt_h5t_native_double(void);
hid_t kt_h5t_native_int64(void);
hid_t kt_h5t_native_uint64(void);
hid_t kt_h5t_native_uint32(void);
hid_t kt_h5t_native_uint8(void);
hid_t kt_h5t_c_s1(void);
hid_t kt_h5p_default(void);
hid_t kt_h5s_all(void);
hid_t kt_h5p_file_access(void);
unsigned kt_h5f_acc_trunc(void);
unsigned kt_h5f_acc_excl(void);
unsigned kt_h5f_acc_rdonly(void);
unsigned kt_h5f_acc_rdwr(void);
hid_t kt_h5p_link_create(void);
H5F_libver_t kt_h5f_libver_latest(void);
size_t kt_h5t_variable(void);
// Silences HDF5's automatic error stack printing so that KnowTune reports errors once, itself.
void kt_h5_silence_errors(void);

// Helpers that need C (KnowTuneShimHelpers.c): version-portable HDF5 traversal (H5Lvisit/H5Aiterate are
// API-versioned macros in HDF5 >= 1.12), the HDF5 error stack as text, and sched_getaffinity (CPU_* macros).
typedef int (*kt_name_callback)(const char *name, void *context);
// Calls `callback` with the path (relative to `location`) of every dataset below `location`, in name order.
// Returns 0 on success, negative on an HDF5 failure or when the callback returns non-zero.
int kt_h5_visit_datasets(hid_t location, kt_name_callback callback, void *context);
// Calls `callback` with the name of every attribute of the object `object` (relative to `location`).
int kt_h5_visit_attributes(hid_t location, const char *object, kt_name_callback callback, void *context);
// Writes "<outermost description>: <innermost description>" of the current HDF5 error stack into `buffer`
// (NUL-terminated, truncated to `capacity`) and returns its length; 0 when the stack is empty.
size_t kt_h5_error_description(char *buffer, size_t capacity);
// Writes up to `capacity` CPU ids of this thread's affinity mask into `cpus`, ascending; returns how many
// CPUs the mask holds (may exceed `capacity`), or -1 with errno set.
int kt_cpu_affinity(int *cpus, int capacity);

#endif
