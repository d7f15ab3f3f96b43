// Implements typed reads of a JSON object that came from outside (dataset records, dataset_info.json,
// adapter_config.json): a key that is absent or null reads as nil, a key of the wrong JSON type is an error naming
// the file, the place and the key, never a silent default; does not parse JSON (JSONSerialization does).
import Foundation

/// One JSON object of a file, read with its types checked.
public struct JSONFields {
    public let object: [String: Any]
    /// The file, for the error message.
    public let path: String
    /// Where in the file, for example "record 3" or "entry dolly_train".
    public let place: String

    public init(_ object: [String: Any], path: String, place: String) {
        self.object = object
        self.path = path
        self.place = place
    }

    /// `value` as an object of `path` at `place`, or an error if it is not a JSON object.
    public init(_ value: Any?, path: String, place: String) throws {
        guard let object = value as? [String: Any] else {
            throw KnowTuneError.badFormat(path: path, reason: "\(place) is not a JSON object")
        }
        self.init(object, path: path, place: place)
    }

    /// JSONSerialization gives booleans and numbers as NSNumber; a boolean's type code is "c".
    public static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    public func has(_ key: String) -> Bool { object[key].map { !($0 is NSNull) } ?? false }

    public func wrongType(_ key: String, expected: String) -> KnowTuneError {
        let value = object[key].map { "\($0)" } ?? "nothing"
        return .badFormat(path: path, reason: "\(place): \"\(key)\" must be \(expected), not \(value.prefix(60))")
    }

    public func string(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let text = object[key] as? String else { throw wrongType(key, expected: "a string") }
        return text
    }

    public func bool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, Self.isBoolean(number) else { throw wrongType(key, expected: "true or false") }
        return number.boolValue
    }

    public func number(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, !Self.isBoolean(number), number.doubleValue.isFinite else {
            throw wrongType(key, expected: "a number")
        }
        return number.doubleValue
    }

    /// A whole number within `range`.
    public func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = try number(key) else { return nil }
        guard value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            throw wrongType(key, expected: "a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(value)
    }

    public func fields(_ key: String) throws -> JSONFields? {
        guard has(key) else { return nil }
        return try JSONFields(object[key], path: path, place: "\(place) \"\(key)\"")
    }
}
