// Implements a small safe wrapper over serial HDF5: create/open/close a file, write and read float32, float64,
// int64 and uint64 datasets with their shape, scalar and string attributes on the root or on a dataset, and the
// list of dataset paths; does not know about checkpoints (CheckpointStore does) and is not thread-safe (libhdf5
// is not, unless built thread-safe: use one file from one thread).
import CHDF5
import CKnowTuneHDF5Shims
import Foundation
import KnowTuneTensor

/// The element types an ``HDF5File`` reads and writes.
public enum HDF5ElementType: String, Sendable, CaseIterable {
    case float32, float64, int64, uint64

    var nativeType: hid_t {
        switch self {
        case .float32: return kt_h5t_native_float()
        case .float64: return kt_h5t_native_double()
        case .int64: return kt_h5t_native_int64()
        case .uint64: return kt_h5t_native_uint64()
        }
    }
}

/// A Swift type stored as one ``HDF5ElementType``.
public protocol HDF5Element {
    static var hdf5Type: HDF5ElementType { get }
    static var zero: Self { get }
}

extension Float: HDF5Element { public static var hdf5Type: HDF5ElementType { .float32 } }
extension Double: HDF5Element { public static var hdf5Type: HDF5ElementType { .float64 } }
extension Int64: HDF5Element { public static var hdf5Type: HDF5ElementType { .int64 } }
extension UInt64: HDF5Element { public static var hdf5Type: HDF5ElementType { .uint64 } }

/// One open HDF5 file. Every failure is a `KnowTuneError` naming the file and carrying HDF5's own reason.
///
/// Dataset names are paths relative to the root ("lora/q_proj.A"); missing groups are created on write. The
/// root object for attributes is "/". Files are written in the HDF5 1.8 object format (readable by HDF5 >= 1.8),
/// which stores attributes larger than 64 KiB (JSON configs, metric history) in dense storage.
public final class HDF5File {
    public let path: String
    public let isWritable: Bool
    private var id: hid_t

    private init(path: String, id: hid_t, writable: Bool) {
        self.path = path
        self.id = id
        self.isWritable = writable
    }

    deinit {
        if id >= 0 { H5Fclose(id) }
    }

    /// Creates (or truncates) the file at `path` for writing.
    public static func create(_ path: String) throws -> HDF5File {
        kt_h5_silence_errors()
        let access = try fileAccess(path)
        defer { H5Pclose(access) }
        // No modification times anywhere in the file: the same contents give the same bytes and whole-file checksum.
        let creation = H5Pcreate(kt_h5p_file_create())
        guard creation >= 0 else { throw writeError(path, "cannot create a property list") }
        defer { H5Pclose(creation) }
        H5Pset_obj_track_times(creation, false)
        let id = H5Fcreate(path, kt_h5f_acc_trunc(), creation, access)
        guard id >= 0 else { throw writeError(path, "cannot create the file") }
        return HDF5File(path: path, id: id, writable: true)
    }

    /// Opens the existing file at `path`, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        kt_h5_silence_errors()
        guard FileManager.default.fileExists(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no such file")
        }
        let access = try fileAccess(path)
        defer { H5Pclose(access) }
        let id = H5Fopen(path, writable ? kt_h5f_acc_rdwr() : kt_h5f_acc_rdonly(), access)
        guard id >= 0 else {
            throw KnowTuneError.badFormat(
                path: path, reason: "not a readable HDF5 file (truncated or corrupt?): \(lastHDF5Error())")
        }
        return HDF5File(path: path, id: id, writable: writable)
    }

    /// Closes the file, reporting a failed close (which, after writes, means the file is garbage).
    public func close() throws {
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        guard status >= 0 else { throw Self.writeError(path, "closing the file failed") }
    }

    /// Hands libhdf5's buffers to the operating system (`write`), without `fsync`.
    public func flush() throws {
        try requireOpen()
        guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else { throw Self.writeError(path, "flush failed") }
    }

    // MARK: Datasets

    /// Writes `values` as a new dataset of `shape` (row-major; `[]` is a scalar) at `name`.
    public func write<Element: HDF5Element>(_ values: [Element], shape: [Int], to name: String) throws {
        try requireWritable()
        try Self.validate(name: name, path: path)
        guard shape.allSatisfy({ $0 >= 0 }), let count = Self.elementCount(shape), count == values.count else {
            throw KnowTuneError.invalidInput("dataset '\(name)' for \(path): shape \(shape) does not hold \(values.count) values")
        }
        let space = try dataspace(shape)
        defer { H5Sclose(space) }
        let linkCreation = H5Pcreate(kt_h5p_link_create())
        guard linkCreation >= 0 else { throw Self.writeError(path, "cannot create a property list") }
        defer { H5Pclose(linkCreation) }
        H5Pset_create_intermediate_group(linkCreation, 1)
        let creation = H5Pcreate(kt_h5p_dataset_create())
        guard creation >= 0 else { throw Self.writeError(path, "cannot create a property list") }
        defer { H5Pclose(creation) }
        H5Pset_obj_track_times(creation, false)
        let type = Element.hdf5Type.nativeType
        let dataset = H5Dcreate2(id, name, type, space, linkCreation, creation, kt_h5p_default())
        guard dataset >= 0 else { throw Self.writeError(path, "cannot create dataset '\(name)'") }
        defer { H5Dclose(dataset) }
        guard count > 0 else { return }
        let status = values.withUnsafeBytes { buffer in
            H5Dwrite(dataset, type, kt_h5s_all(), kt_h5s_all(), kt_h5p_default(), buffer.baseAddress)
        }
        guard status >= 0 else { throw Self.writeError(path, "cannot write dataset '\(name)'") }
    }

    /// Reads the dataset at `name`, which must hold `Element`s.
    public func read<Element: HDF5Element>(_ name: String, as type: Element.Type = Element.self) throws
        -> (shape: [Int], values: [Element]) {
        try requireOpen()
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        let stored = try elementType(dataset: dataset, name: name)
        guard stored == Element.hdf5Type else {
            let holds = stored?.rawValue ?? "an unsupported type"
            throw KnowTuneError.badFormat(
                path: path, reason: "dataset '\(name)' holds \(holds), expected \(Element.hdf5Type.rawValue)")
        }
        let shape = try self.shape(dataset: dataset, name: name)
        guard let count = Self.elementCount(shape) else {
            throw KnowTuneError.badFormat(path: path, reason: "dataset '\(name)' has an impossible shape \(shape)")
        }
        var values = [Element](repeating: .zero, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes { buffer in
                H5Dread(dataset, Element.hdf5Type.nativeType, kt_h5s_all(), kt_h5s_all(), kt_h5p_default(), buffer.baseAddress)
            }
            guard status >= 0 else { throw readError("cannot read dataset '\(name)'") }
        }
        return (shape, values)
    }

    /// The element type of dataset `name`, or nil when it is none of ``HDF5ElementType``.
    public func elementType(of name: String) throws -> HDF5ElementType? {
        try requireOpen()
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        return try elementType(dataset: dataset, name: name)
    }

    /// The shape of dataset `name` (`[]` for a scalar).
    public func shape(of name: String) throws -> [Int] {
        try requireOpen()
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        return try shape(dataset: dataset, name: name)
    }

    /// The paths of every dataset in the file, sorted.
    public func datasetNames() throws -> [String] {
        try requireOpen()
        let collector = NameCollector()
        let status = withExtendedLifetime(collector) {
            kt_h5_visit_datasets(id, NameCollector.callback, Unmanaged.passUnretained(collector).toOpaque())
        }
        guard status >= 0 else { throw readError("cannot list datasets") }
        return collector.names.sorted()
    }

    /// Whether a dataset or group exists at `name`.
    public func contains(_ name: String) throws -> Bool {
        try requireOpen()
        var prefix = ""
        for component in name.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            let exists = H5Lexists(id, prefix, kt_h5p_default())
            guard exists >= 0 else { throw readError("cannot look up '\(prefix)'") }
            if exists == 0 { return false }
        }
        return !prefix.isEmpty
    }

    // MARK: Attributes

    /// Sets the scalar attribute `name` on `object` ("/" for the root, or a dataset path), replacing it.
    public func setAttribute<Element: HDF5Element>(_ name: String, _ value: Element, on object: String = "/") throws {
        try requireWritable()
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw Self.writeError(path, "cannot create a dataspace") }
        defer { H5Sclose(space) }
        let type = Element.hdf5Type.nativeType
        let attribute = try createAttribute(name, on: object, type: type, space: space)
        defer { H5Aclose(attribute) }
        let status = withUnsafeBytes(of: value) { H5Awrite(attribute, type, $0.baseAddress) }
        guard status >= 0 else { throw Self.writeError(path, "cannot write attribute '\(name)'") }
    }

    /// Sets the string attribute `name` on `object` (stored as fixed-length UTF-8), replacing it.
    public func setAttribute(_ name: String, string: String, on object: String = "/") throws {
        try requireWritable()
        var bytes = Array(string.utf8)
        if bytes.isEmpty { bytes = [0] }  // HDF5 strings have at least one byte; NULL padding reads back as "".
        let type = H5Tcopy(kt_h5t_c_s1())
        guard type >= 0 else { throw Self.writeError(path, "cannot create a string type") }
        defer { H5Tclose(type) }
        guard H5Tset_size(type, bytes.count) >= 0, H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0,
              H5Tset_cset(type, H5T_CSET_UTF8) >= 0 else {
            throw Self.writeError(path, "cannot set up a string type for attribute '\(name)'")
        }
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw Self.writeError(path, "cannot create a dataspace") }
        defer { H5Sclose(space) }
        let attribute = try createAttribute(name, on: object, type: type, space: space)
        defer { H5Aclose(attribute) }
        guard H5Awrite(attribute, type, bytes) >= 0 else {
            throw Self.writeError(path, "cannot write attribute '\(name)' (\(bytes.count) bytes)")
        }
    }

    /// Reads the scalar attribute `name` of `object`, which must hold one `Element`.
    public func attribute<Element: HDF5Element>(_ name: String, on object: String = "/",
                                                as type: Element.Type = Element.self) throws -> Element {
        try requireOpen()
        let attribute = try openAttribute(name, on: object)
        defer { H5Aclose(attribute) }
        let fileType = H5Aget_type(attribute)
        guard fileType >= 0 else { throw readError("cannot read the type of attribute '\(name)'") }
        defer { H5Tclose(fileType) }
        let stored = Self.classify(fileType)
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        let points = H5Sget_simple_extent_npoints(space)
        guard stored == Element.hdf5Type, points == 1 else {
            let holds = "\(points) \(stored?.rawValue ?? "unsupported") value(s)"
            throw KnowTuneError.badFormat(
                path: path, reason: "attribute '\(name)' of \(object) holds \(holds), expected one \(Element.hdf5Type.rawValue)")
        }
        var value = Element.zero
        let status = withUnsafeMutableBytes(of: &value) { H5Aread(attribute, Element.hdf5Type.nativeType, $0.baseAddress) }
        guard status >= 0 else {
            throw readError("cannot read attribute '\(name)' of \(object)")
        }
        return value
    }

    /// Reads the string attribute `name` of `object` (fixed-length or variable-length, as h5py writes them).
    public func stringAttribute(_ name: String, on object: String = "/") throws -> String {
        try requireOpen()
        let attribute = try openAttribute(name, on: object)
        defer { H5Aclose(attribute) }
        let fileType = H5Aget_type(attribute)
        guard fileType >= 0 else { throw readError("cannot read the type of attribute '\(name)'") }
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == H5T_STRING else {
            throw KnowTuneError.badFormat(path: path, reason: "attribute '\(name)' of \(object) is not a string")
        }
        let memoryType = H5Tcopy(fileType)
        guard memoryType >= 0 else { throw readError("cannot copy the type of attribute '\(name)'") }
        defer { H5Tclose(memoryType) }
        if H5Tis_variable_str(fileType) > 0 {
            var pointer: UnsafeMutablePointer<CChar>?
            guard H5Aread(attribute, memoryType, &pointer) >= 0 else { throw readError("cannot read attribute '\(name)'") }
            defer { if let pointer { H5free_memory(pointer) } }
            return pointer.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(fileType)
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        guard H5Aread(attribute, memoryType, &bytes) >= 0 else { throw readError("cannot read attribute '\(name)'") }
        if let end = bytes.firstIndex(of: 0) { bytes.removeSubrange(end...) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The names of every attribute of `object`, sorted.
    public func attributeNames(on object: String = "/") throws -> [String] {
        try requireOpen()
        let collector = NameCollector()
        let status = withExtendedLifetime(collector) {
            kt_h5_visit_attributes(id, Self.objectPath(object), NameCollector.callback,
                                   Unmanaged.passUnretained(collector).toOpaque())
        }
        guard status >= 0 else { throw readError("cannot list the attributes of \(object)") }
        return collector.names.sorted()
    }

    /// Whether `object` has an attribute `name`.
    public func hasAttribute(_ name: String, on object: String = "/") throws -> Bool {
        try requireOpen()
        let exists = H5Aexists_by_name(id, Self.objectPath(object), name, kt_h5p_default())
        guard exists >= 0 else { throw readError("cannot look up attribute '\(name)' of \(object)") }
        return exists > 0
    }

    // MARK: Helpers

    private func requireOpen() throws {
        guard id >= 0 else { throw KnowTuneError.invalidInput("\(path) is already closed") }
    }

    private func requireWritable() throws {
        try requireOpen()
        guard isWritable else { throw KnowTuneError.invalidInput("\(path) is open read-only") }
    }

    private func openDataset(_ name: String) throws -> hid_t {
        guard try contains(name) else {
            throw KnowTuneError.badFormat(path: path, reason: "no dataset '\(name)'")
        }
        let dataset = H5Dopen2(id, name, kt_h5p_default())
        guard dataset >= 0 else { throw readError("cannot open dataset '\(name)'") }
        return dataset
    }

    private func elementType(dataset: hid_t, name: String) throws -> HDF5ElementType? {
        let type = H5Dget_type(dataset)
        guard type >= 0 else { throw readError("cannot read the type of dataset '\(name)'") }
        defer { H5Tclose(type) }
        return Self.classify(type)
    }

    private func shape(dataset: hid_t, name: String) throws -> [Int] {
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw readError("cannot read the shape of dataset '\(name)'") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw readError("cannot read the rank of dataset '\(name)'") }
        var dimensions = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0, H5Sget_simple_extent_dims(space, &dimensions, nil) < 0 {
            throw readError("cannot read the dimensions of '\(name)'")
        }
        return try dimensions.map { dimension in
            guard dimension <= hsize_t(Int.max) else {
                throw KnowTuneError.badFormat(path: path, reason: "dataset '\(name)' has a dimension of \(dimension)")
            }
            return Int(dimension)
        }
    }

    private func dataspace(_ shape: [Int]) throws -> hid_t {
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dimensions = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dimensions.count), dimensions, nil)
        }
        guard space >= 0 else { throw Self.writeError(path, "cannot create a dataspace of shape \(shape)") }
        return space
    }

    private func createAttribute(_ name: String, on object: String, type: hid_t, space: hid_t) throws -> hid_t {
        guard !name.isEmpty else { throw KnowTuneError.invalidInput("empty attribute name for \(path)") }
        let objectPath = Self.objectPath(object)
        let exists = H5Aexists_by_name(id, objectPath, name, kt_h5p_default())
        guard exists >= 0 else { throw Self.writeError(path, "cannot look up attribute '\(name)' of \(object)") }
        if exists > 0, H5Adelete_by_name(id, objectPath, name, kt_h5p_default()) < 0 {
            throw Self.writeError(path, "cannot replace attribute '\(name)' of \(object)")
        }
        let attribute = H5Acreate_by_name(id, objectPath, name, type, space, kt_h5p_default(), kt_h5p_default(), kt_h5p_default())
        guard attribute >= 0 else { throw Self.writeError(path, "cannot create attribute '\(name)' on \(object)") }
        return attribute
    }

    private func openAttribute(_ name: String, on object: String) throws -> hid_t {
        guard try hasAttribute(name, on: object) else {
            let owner = object == "/" ? "the file" : "'\(object)'"
            throw KnowTuneError.badFormat(path: path, reason: "\(owner) has no attribute '\(name)'")
        }
        let attribute = H5Aopen_by_name(id, Self.objectPath(object), name, kt_h5p_default(), kt_h5p_default())
        guard attribute >= 0 else { throw readError("cannot open attribute '\(name)' of \(object)") }
        return attribute
    }

    private func readError(_ what: String) -> KnowTuneError {
        .badFormat(path: path, reason: "\(what): \(Self.lastHDF5Error())")
    }

    private static func writeError(_ path: String, _ what: String) -> KnowTuneError {
        .fileUnreadable(path: path, reason: "cannot write: \(what): \(lastHDF5Error())")
    }

    /// File access: HDF5 1.8 object format or newer (dense attribute storage), objects closed with the file.
    private static func fileAccess(_ path: String) throws -> hid_t {
        let access = H5Pcreate(kt_h5p_file_access())
        guard access >= 0 else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot create HDF5 file-access properties")
        }
        H5Pset_libver_bounds(access, H5F_LIBVER_V18, kt_h5f_libver_latest())
        H5Pset_fclose_degree(access, H5F_CLOSE_STRONG)
        return access
    }

    static func lastHDF5Error() -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        let length = kt_h5_error_description(&buffer, buffer.count)
        return length > 0 ? String(cString: buffer) : "no detail from HDF5"
    }

    static func classify(_ type: hid_t) -> HDF5ElementType? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT where size == 4: return .float32
        case H5T_FLOAT where size == 8: return .float64
        case H5T_INTEGER where size == 8: return H5Tget_sign(type) == H5T_SGN_NONE ? .uint64 : .int64
        default: return nil
        }
    }

    static func objectPath(_ object: String) -> String {
        object.isEmpty || object == "/" ? "." : object
    }

    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Dataset paths: non-empty components separated by single "/", no "." or "..", no leading "/".
    static func validate(name: String, path: String) throws {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw KnowTuneError.invalidInput(
                "bad dataset name '\(name)' for \(path) (use non-empty components separated by single '/')")
        }
    }
}

/// Collects names passed to a C callback.
private final class NameCollector {
    var names: [String] = []

    static let callback: kt_name_callback = { name, context in
        guard let name, let context else { return 1 }
        Unmanaged<NameCollector>.fromOpaque(context).takeUnretainedValue().names.append(String(cString: name))
        return 0
    }
}
