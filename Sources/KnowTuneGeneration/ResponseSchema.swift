// Implements the JSON Schema subset that constrained decoding enforces (OpenAI `response_format`): objects with
// `properties`, `required`, `additionalProperties: false`; arrays with `items`, `minItems`, `maxItems`; strings,
// numbers, integers, booleans, null, `enum`; plus "any JSON value" for `{"type": "json_object"}`. Reading a schema
// refuses every other keyword by name. Does not match text (JSONGrammar and JSONPrefixState do).
import Foundation
import KnowTuneTensor

public indirect enum ResponseSchema: Equatable, Sendable {
    /// Declared properties (at most 64), each at most once, in any order, every required one before the object
    /// closes; nil properties: any keys with any values.
    case object(properties: [Property]?, required: Set<String>)
    case array(items: ResponseSchema, minItems: Int, maxItems: Int?)
    case string
    case number
    case integer
    case boolean
    case null
    /// `enum`: the allowed values as JSON texts (`"red"`, `3`, `true`).
    case literals([String])
    case anyValue

    public struct Property: Equatable, Sendable {
        public let name: String
        public let schema: ResponseSchema

        public init(name: String, schema: ResponseSchema) {
            self.name = name
            self.schema = schema
        }
    }

    /// `{"type": "json_object"}`: any object.
    public static let anyObject = ResponseSchema.object(properties: nil, required: [])

    /// Keywords that only describe a schema and constrain nothing.
    static let annotations: Set<String> = ["description", "title", "$schema", "$comment", "examples", "default"]

    /// Reads a JSON Schema (the parsed JSON object), refusing anything outside the subset with the keyword and
    /// where it is (`schema.properties.facts.items: "pattern" is not supported`).
    public init(jsonSchema: Any, path: String = "schema") throws {
        guard let object = jsonSchema as? [String: Any] else { throw Self.refusal(path, "is not an object") }
        func keys(_ allowed: Set<String>) throws {
            for key in object.keys.sorted() where !allowed.contains(key) && !Self.annotations.contains(key) {
                throw Self.refusal(path, "\"\(key)\" is not supported here (constrained decoding takes type, properties, required, "
                                   + "additionalProperties: false, items, minItems, maxItems, enum)")
            }
        }
        // Refuse what the subset does not know before anything else, so that the message names the keyword.
        try keys(["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum"])
        if let values = object["enum"] {
            try keys(["enum", "type"])
            guard let list = values as? [Any], !list.isEmpty else { throw Self.refusal(path, "\"enum\" must be a non-empty list") }
            self = .literals(try list.map { try Self.jsonText($0, path: path) })
            return
        }
        guard let type = object["type"] else { throw Self.refusal(path, "has no \"type\"") }
        guard let name = type as? String else { throw Self.refusal(path, "\"type\" lists are not supported; give one type") }
        switch name {
        case "object":
            try keys(["type", "properties", "required", "additionalProperties"])
            if let additional = object["additionalProperties"], !Self.isBool(additional) || (additional as? Bool) != false {
                throw Self.refusal(path, "\"additionalProperties\" must be false")
            }
            let properties = object["properties"] as? [String: Any] ?? [:]
            if object["properties"] != nil, object["properties"] as? [String: Any] == nil {
                throw Self.refusal(path, "\"properties\" must be an object")
            }
            guard let required = (object["required"] ?? [String]()) as? [String] else {
                throw Self.refusal(path, "\"required\" must be a list of names")
            }
            for name in required where properties[name] == nil {
                throw Self.refusal(path, "requires \"\(name)\", which is not among its properties")
            }
            guard properties.count <= 64 else { throw Self.refusal(path, "has \(properties.count) properties; at most 64 are supported") }
            // Properties may come in any order, so the order JSONSerialization reads them in does not matter.
            self = .object(properties: try properties.keys.sorted().map {
                Property(name: $0, schema: try ResponseSchema(jsonSchema: properties[$0]!, path: path + ".properties." + $0))
            }, required: Set(required))
        case "array":
            try keys(["type", "items", "minItems", "maxItems"])
            let items = try object["items"].map { try ResponseSchema(jsonSchema: $0, path: path + ".items") } ?? .anyValue
            let minimum = try Self.count(object["minItems"], "minItems", path: path) ?? 0
            let maximum = try Self.count(object["maxItems"], "maxItems", path: path)
            if let maximum, maximum < minimum { throw Self.refusal(path, "\"maxItems\" \(maximum) is below \"minItems\" \(minimum)") }
            self = .array(items: items, minItems: minimum, maxItems: maximum)
        case "string": try keys(["type"]); self = .string
        case "number": try keys(["type"]); self = .number
        case "integer": try keys(["type"]); self = .integer
        case "boolean": try keys(["type"]); self = .boolean
        case "null": try keys(["type"]); self = .null
        default: throw Self.refusal(path, "type \"\(name)\" is not supported")
        }
    }

    /// The schema as a JSON Schema object (what `init(jsonSchema:)` reads back), e.g. to send as `response_format`.
    public var jsonSchema: [String: Any] {
        switch self {
        case let .object(properties, required):
            guard let properties else { return ["type": "object"] }
            var schema: [String: Any] = ["type": "object", "additionalProperties": false,
                                         "properties": Dictionary(uniqueKeysWithValues: properties.map { ($0.name, $0.schema.jsonSchema) })]
            if !required.isEmpty { schema["required"] = required.sorted() }
            return schema
        case let .array(items, minItems, maxItems):
            var schema: [String: Any] = ["type": "array"]
            if items != .anyValue { schema["items"] = items.jsonSchema }
            if minItems > 0 { schema["minItems"] = minItems }
            if let maxItems { schema["maxItems"] = maxItems }
            return schema
        case .string: return ["type": "string"]
        case .number: return ["type": "number"]
        case .integer: return ["type": "integer"]
        case .boolean: return ["type": "boolean"]
        case .null: return ["type": "null"]
        case let .literals(texts):
            return ["enum": texts.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed)) ?? NSNull() }]
        case .anyValue: return [:]
        }
    }

    /// OpenAI's `response_format` value: `{"type": "json_object"}`, `{"type": "json_schema", "json_schema": {"name",
    /// "schema", "strict"}}`, or `{"type": "text"}` (nil: no constraint).
    public static func responseFormat(_ value: Any) throws -> ResponseSchema? {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw KnowTuneError.invalidInput("response_format must be an object with a \"type\"")
        }
        switch type {
        case "text": return nil
        case "json_object": return .anyObject
        case "json_schema":
            guard let wrapper = object["json_schema"] as? [String: Any], let schema = wrapper["schema"] else {
                throw KnowTuneError.invalidInput("response_format json_schema needs {\"json_schema\": {\"name\": …, \"schema\": {…}}}")
            }
            return try ResponseSchema(jsonSchema: schema)
        default: throw KnowTuneError.invalidInput("response_format type \"\(type)\" is not supported (text, json_object, json_schema)")
        }
    }

    /// Either form a user may hand over: an OpenAI `response_format` object (by its `type`: json_schema,
    /// json_object or text) or a bare JSON Schema. Nil for `text`.
    public static func schemaOrResponseFormat(_ value: Any) throws -> ResponseSchema? {
        if let object = value as? [String: Any], let type = object["type"] as? String, ["json_schema", "json_object", "text"].contains(type) {
            return try responseFormat(object)
        }
        return try ResponseSchema(jsonSchema: value)
    }

    private static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return JSONFields.isBoolean(number)
    }

    private static func count(_ value: Any?, _ name: String, path: String) throws -> Int? {
        guard let value else { return nil }
        guard let number = value as? NSNumber, !isBool(number), number.doubleValue == number.doubleValue.rounded(),
              number.doubleValue >= 0, number.doubleValue <= 100_000 else {
            throw refusal(path, "\"\(name)\" must be a whole number from 0 to 100000")
        }
        return number.intValue
    }

    private static func jsonText(_ value: Any, path: String) throws -> String {
        if value is NSNull { return "null" }
        if isBool(value) { return (value as? Bool ?? false) ? "true" : "false" }
        guard value is String || value is NSNumber,
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes]) else {
            throw refusal(path, "\"enum\" values must be strings, numbers, booleans or null")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func refusal(_ path: String, _ message: String) -> KnowTuneError {
        .invalidInput("response schema: \(path) \(message)")
    }
}
