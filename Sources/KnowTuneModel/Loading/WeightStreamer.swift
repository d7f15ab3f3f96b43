// Implements turning a model file's base weights into the bytes of a LlamaStorageLayout one tensor at a time (a
// quantized GGUF tensor already in its target encoding copied as stored, every other one read as fp32 and encoded),
// so that no precision ever holds more than one tensor in fp32: a 7B model becomes a q4 buffer without a 25 GiB
// intermediate. Does not decide where the bytes go (the node-shared cache writes a file, ModelLoader a buffer).
import Foundation
import KnowTuneTensor

public enum WeightStreamer {
    /// Writes every tensor of `layout`, in its order, through `write` (bytes, count); returns the peak bytes of
    /// scratch it held (the largest tensor in fp32 plus its encoding). `opened`: `path`'s GGUF file when the caller
    /// has already parsed it.
    @discardableResult
    public static func stream(_ path: String, configuration c: LlamaConfiguration, layout: LlamaStorageLayout,
                              opened: GGUFFile? = nil, write: (UnsafeRawPointer, Int) throws -> Void) throws -> Int {
        let largest = layout.tensors.map(\.storage.elementCount).max() ?? 0
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(largest, 1))
        let encoded = UnsafeMutableRawPointer.allocate(byteCount: max(largest * 4, 1), alignment: 64)
        defer { floats.deallocate(); encoded.deallocate() }
        let read: (String, [Int], LlamaTensorStorage) throws -> Void
        // The source files' pages each tensor touched, dropped from the resident set after it (a 13 GiB f16 file
        // would otherwise count fully towards the conversion's RSS, page cache though it is).
        var mappings: [MappedFile] = []
        switch try ModelLoader.resolve(path) {
        case let .gguf(file):
            let gguf = try opened ?? GGUFFile(path: file)
            mappings = [gguf.file]
            try GGUFModelLoader.checkTensors(of: gguf, configuration: c)
            let sources = GGUFModelLoader.sourceEncodings(of: gguf, configuration: c)
            let slots = GGUFModelLoader.slots(c)
            read = { name, _, storage in
                if storage.encoding.isQuantized, sources[name] == storage.encoding {
                    try GGUFModelLoader.copyStored(name, from: gguf, slots: slots, into: encoded)
                } else {
                    try GGUFModelLoader.read(name, from: gguf, slots: slots, into: floats)
                    storage.encoding.encode(floats, count: storage.elementCount, into: encoded)
                }
            }
        case let .huggingFace(folder):
            let shards = try SafeTensorsShards(folder: folder)
            mappings = shards.files.map(\.file)
            read = { name, shape, storage in
                try shards.read(name, into: floats, expectedShape: shape)
                storage.encoding.encode(floats, count: storage.elementCount, into: encoded)
            }
        }
        for tensor in layout.tensors {
            try read(tensor.name, tensor.shape, tensor.storage)
            try write(encoded, tensor.storage.byteCount)
            for mapping in mappings { mapping.releaseResidentPages() }
        }
        return largest * 8
    }
}
