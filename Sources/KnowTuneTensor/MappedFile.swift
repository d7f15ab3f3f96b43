// Implements a read-only memory mapping of a whole file; does not copy or parse it.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file mapped read-only into memory, so that weights are paged in on demand and shared between
/// processes by the page cache instead of being read into private arrays.
public final class MappedFile {
    public let path: String
    public let byteCount: Int
    /// Start of the mapping (nil only for an empty file).
    public let baseAddress: UnsafeRawPointer?

    /// Whether pages may be written: privately (copy-on-write), never reaching the file or other processes.
    public let isCopyOnWrite: Bool

    /// Maps `path` read-only and shared, or, with `copyOnWrite`, writable in private copies of the touched pages
    /// (untouched pages stay shared with every other process mapping the file).
    public init(path: String, copyOnWrite: Bool = false) throws {
        self.path = path
        isCopyOnWrite = copyOnWrite
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw KnowTuneError.fileUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw KnowTuneError.fileUnreadable(path: path, reason: "is a directory")
        }
        byteCount = Int(status.st_size)
        if byteCount == 0 {
            baseAddress = nil
            return
        }
        let mapping = copyOnWrite
            ? mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE, descriptor, 0)
            : mmap(nil, byteCount, PROT_READ, MAP_SHARED, descriptor, 0)
        guard let mapping, mapping != MAP_FAILED else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        baseAddress = UnsafeRawPointer(mapping)
    }

    deinit {
        if let baseAddress { munmap(UnsafeMutableRawPointer(mutating: baseAddress), byteCount) }
    }

    /// Drops this process's resident pages of a read-only shared mapping (they stay in the page cache), so a pass
    /// that reads a large file once does not keep it all in its resident set.
    public func releaseResidentPages() {
        guard let baseAddress, !isCopyOnWrite else { return }
        madvise(UnsafeMutableRawPointer(mutating: baseAddress), byteCount, MADV_DONTNEED)
    }

    /// The bytes `offset ..< offset + count`, or a format error naming the file when they run past its end.
    public func bytes(at offset: Int, count: Int) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, count >= 0, offset <= byteCount, count <= byteCount - offset else {
            throw KnowTuneError.badFormat(
                path: path, reason: "truncated: needs bytes \(offset)..<\(offset + count) but the file has \(byteCount)")
        }
        guard let baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: baseAddress + offset, count: count)
    }
}
