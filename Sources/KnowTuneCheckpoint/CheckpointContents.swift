// Implements the value a checkpoint holds: named float32 tensors with shapes, float64 and int64 arrays, and
// string attributes, plus the naming rules they must follow; does not know what the names mean (the trainer
// decides: LoRA weights, AdamW moments, RNG state, data cursor, config JSON, metric history, world size).
import Foundation
import KnowTuneTensor

/// A float32 tensor: row-major values and their shape.
public struct CheckpointTensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    /// A 1-D tensor.
    public init(_ values: [Float]) {
        self.init(shape: [values.count], values: values)
    }
}

/// Everything one checkpoint file stores. Names are dataset paths ("adapter/q_proj.lora_A", or flat PEFT keys
/// with dots) and must be unique across ``tensors``, ``doubles`` and ``integers``. Files list them sorted.
public struct CheckpointContents: Equatable, Sendable {
    public var tensors: [String: CheckpointTensor]
    public var doubles: [String: [Double]]
    public var integers: [String: [Int64]]
    /// Free-form text: JSON of the resolved configuration, metric history, format version, world size, …
    public var attributes: [String: String]

    public init(tensors: [String: CheckpointTensor] = [:], doubles: [String: [Double]] = [:],
                integers: [String: [Int64]] = [:], attributes: [String: String] = [:]) {
        self.tensors = tensors
        self.doubles = doubles
        self.integers = integers
        self.attributes = attributes
    }

    /// Every dataset name, sorted.
    public var datasetNames: [String] {
        (Array(tensors.keys) + Array(doubles.keys) + Array(integers.keys)).sorted()
    }

    /// Attribute names that start with this prefix belong to the store (format version, checksums).
    public static let reservedAttributePrefix = "knowtune.store."

    /// Checks names and shapes; `destination` names the file in the error.
    public func validate(destination: String) throws {
        var problems: [String] = []
        var seen: [String: String] = [:]
        for (kind, names) in [("tensor", tensors.keys.sorted()), ("doubles", doubles.keys.sorted()),
                              ("integers", integers.keys.sorted())] {
            for name in names {
                if let other = seen[name] { problems.append("'\(name)' is both a \(other) and a \(kind) dataset") }
                seen[name] = kind
                do { try HDF5File.validate(name: name, path: destination) } catch { problems.append("\(error)") }
            }
        }
        let sortedNames = seen.keys.sorted()
        for (index, name) in sortedNames.enumerated() {
            // "a" and "a/b" cannot both exist: "a" would have to be a dataset and a group.
            if index + 1 < sortedNames.count, sortedNames[index + 1].hasPrefix(name + "/") {
                problems.append("'\(name)' is a dataset and also the group of '\(sortedNames[index + 1])'")
            }
        }
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            let count = HDF5File.elementCount(tensor.shape)
            if tensor.shape.contains(where: { $0 < 0 }) || count != tensor.values.count {
                problems.append("tensor '\(name)' has shape \(tensor.shape) but \(tensor.values.count) values")
            }
        }
        for name in attributes.keys.sorted() {
            if name.isEmpty { problems.append("an attribute has an empty name") }
            if name.hasPrefix(Self.reservedAttributePrefix) {
                problems.append("attribute '\(name)' uses the reserved prefix '\(Self.reservedAttributePrefix)'")
            }
        }
        guard problems.isEmpty else {
            throw KnowTuneError.invalidInput("cannot write checkpoint \(destination): " + problems.joined(separator: "; "))
        }
    }
}
