// Implements the accessors and helpers declared in KnowTuneHDF5Shims.h; see there. Holds no state and allocates
// nothing beyond the call.
#include <stdio.h>
#include <string.h>
#include "KnowTuneHDF5Shims.h"

// Datatypes.
hid_t kt_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t kt_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t kt_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t kt_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
hid_t kt_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
hid_t kt_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t kt_h5t_c_s1(void) { return H5T_C_S1; }
size_t kt_h5t_variable(void) { return H5T_VARIABLE; }

// Property lists and selections.
hid_t kt_h5p_default(void) { return H5P_DEFAULT; }
hid_t kt_h5s_all(void) { return H5S_ALL; }
hid_t kt_h5p_file_access(void) { return H5P_FILE_ACCESS; }
hid_t kt_h5p_link_create(void) { return H5P_LINK_CREATE; }
hid_t kt_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t kt_h5p_file_create(void) { return H5P_FILE_CREATE; }

// File open modes and format versions.
unsigned kt_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
unsigned kt_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
unsigned kt_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned kt_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
H5F_libver_t kt_h5f_libver_latest(void) { return H5F_LIBVER_LATEST; }

// KnowTune reports HDF5 failures itself; the library's own stack printout would repeat them on stderr.
void kt_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

struct kt_visit {
    kt_name_callback callback;
    void *context;
};

static herr_t kt_visit_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    struct kt_visit *visit = (struct kt_visit *)data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t object = H5Oopen(group, name, H5P_DEFAULT);
    if (object < 0) return -1;
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    if (type != H5I_DATASET) return 0;
    return visit->callback(name, visit->context) == 0 ? 0 : -1;
}

int kt_h5_visit_datasets(hid_t location, kt_name_callback callback, void *context) {
    struct kt_visit visit = {callback, context};
    return H5Lvisit(location, H5_INDEX_NAME, H5_ITER_INC, kt_visit_link, &visit) < 0 ? -1 : 0;
}

static herr_t kt_visit_attribute(hid_t location, const char *name, const H5A_info_t *info, void *data) {
    (void)location;
    (void)info;
    struct kt_visit *visit = (struct kt_visit *)data;
    return visit->callback(name, visit->context) == 0 ? 0 : -1;
}

int kt_h5_visit_attributes(hid_t location, const char *object, kt_name_callback callback, void *context) {
    struct kt_visit visit = {callback, context};
    return H5Aiterate_by_name(location, object, H5_INDEX_NAME, H5_ITER_INC, NULL, kt_visit_attribute, &visit,
                              H5P_DEFAULT) < 0 ? -1 : 0;
}

struct kt_error_text {
    char first[512];
    char last[512];
    int count;
};

static herr_t kt_walk_error(unsigned n, const H5E_error2_t *error, void *data) {
    (void)n;
    struct kt_error_text *text = (struct kt_error_text *)data;
    const char *description = (error->desc && error->desc[0]) ? error->desc : error->func_name;
    if (!description) return 0;
    if (text->count == 0) snprintf(text->first, sizeof text->first, "%s", description);
    snprintf(text->last, sizeof text->last, "%s", description);
    text->count += 1;
    return 0;
}

size_t kt_h5_error_description(char *buffer, size_t capacity) {
    if (capacity == 0) return 0;
    struct kt_error_text text;
    memset(&text, 0, sizeof text);
    // Downward: from the API function that failed to the innermost cause.
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, kt_walk_error, &text);
    int written;
    if (text.count == 0) {
        buffer[0] = 0;
        return 0;
    } else if (text.count == 1 || strcmp(text.first, text.last) == 0) {
        written = snprintf(buffer, capacity, "%s", text.first);
    } else {
        written = snprintf(buffer, capacity, "%s: %s", text.first, text.last);
    }
    if (written < 0) return 0;
    return (size_t)written < capacity ? (size_t)written : capacity - 1;
}
