// Implements accessors for HDF5's C macros that Swift cannot import (type ids, property lists, flags) and the helpers
// that need C: version-portable traversal (H5Lvisit/H5Aiterate are API-versioned macros in HDF5 >= 1.12) and the
// error stack as text; does not wrap any other behaviour. Each accessor returns exactly what the macro names.
#ifndef KNOWTUNE_HDF5_SHIMS_H
#define KNOWTUNE_HDF5_SHIMS_H

#include <hdf5.h>

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
hid_t kt_h5p_dataset_create(void);
hid_t kt_h5p_file_create(void);
H5F_libver_t kt_h5f_libver_latest(void);
size_t kt_h5t_variable(void);
// Silences HDF5's automatic error stack printing so that KnowTune reports errors once, itself.
void kt_h5_silence_errors(void);


typedef int (*kt_name_callback)(const char *name, void *context);
// Calls `callback` with the path (relative to `location`) of every dataset below `location`, in name order.
// Returns 0 on success, negative on an HDF5 failure or when the callback returns non-zero.
int kt_h5_visit_datasets(hid_t location, kt_name_callback callback, void *context);
// Calls `callback` with the name of every attribute of the object `object` (relative to `location`).
int kt_h5_visit_attributes(hid_t location, const char *object, kt_name_callback callback, void *context);
// Writes "<outermost description>: <innermost description>" of the current HDF5 error stack into `buffer`
// (NUL-terminated, truncated to `capacity`) and returns its length; 0 when the stack is empty.
size_t kt_h5_error_description(char *buffer, size_t capacity);
#endif
