// Implements the C helpers declared in the last section of KnowTuneShims.h (HDF5 traversal and error text,
// CPU affinity); does not hold state or allocate beyond the call.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include "KnowTuneShims.h"

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
