// Implements the accessors declared in KnowTuneShims.h; see there.
#include "KnowTuneShims.h"

MPI_Comm kt_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Comm kt_mpi_comm_null(void) { return MPI_COMM_NULL; }
MPI_Datatype kt_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype kt_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype kt_mpi_int(void) { return MPI_INT; }
MPI_Datatype kt_mpi_int64(void) { return MPI_INT64_T; }
MPI_Datatype kt_mpi_char(void) { return MPI_CHAR; }
MPI_Datatype kt_mpi_byte(void) { return MPI_BYTE; }
MPI_Op kt_mpi_sum(void) { return MPI_SUM; }
MPI_Op kt_mpi_max(void) { return MPI_MAX; }
MPI_Op kt_mpi_min(void) { return MPI_MIN; }
void *kt_mpi_in_place(void) { return MPI_IN_PLACE; }
MPI_Info kt_mpi_info_null(void) { return MPI_INFO_NULL; }
int kt_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
int kt_mpi_success(void) { return MPI_SUCCESS; }
int kt_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
MPI_Request kt_mpi_request_null(void) { return MPI_REQUEST_NULL; }
MPI_Status *kt_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
MPI_Errhandler kt_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
int kt_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

hid_t kt_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t kt_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t kt_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t kt_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
hid_t kt_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
hid_t kt_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t kt_h5t_c_s1(void) { return H5T_C_S1; }
hid_t kt_h5p_default(void) { return H5P_DEFAULT; }
hid_t kt_h5s_all(void) { return H5S_ALL; }
hid_t kt_h5p_file_access(void) { return H5P_FILE_ACCESS; }
unsigned kt_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned kt_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
unsigned kt_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned kt_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
hid_t kt_h5p_link_create(void) { return H5P_LINK_CREATE; }
H5F_libver_t kt_h5f_libver_latest(void) { return H5F_LIBVER_LATEST; }
size_t kt_h5t_variable(void) { return H5T_VARIABLE; }
void kt_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
