// Implements OpenAI's `stop` texts over streamed text: pieces pass through except a tail that could still grow into a
// stop text, which is held back; once a stop text appears the text before it is released and the choice is over.
// Works on whole characters, so a held-back tail never splits one. Does not decode tokens.
import Foundation

public struct StopTextFilter {
    public let stops: [String]
    private var held = ""
    private let longest: Int
    public private(set) var isStopped = false

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        longest = self.stops.map(\.count).max() ?? 0
    }

    /// Adds a piece of text; returns what may be shown now.
    public mutating func append(_ piece: String) -> String {
        guard !isStopped else { return "" }
        guard !stops.isEmpty else { return piece }
        held += piece
        if let cut = earliestStop(in: held) {
            isStopped = true
            let shown = String(held[..<cut])
            held = ""
            return shown
        }
        // Keep the longest tail that is the start of some stop text.
        var keep = min(longest - 1, held.count)
        while keep > 0 {
            let tail = held.suffix(keep)
            if stops.contains(where: { $0.hasPrefix(tail) }) { break }
            keep -= 1
        }
        let shown = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return shown
    }

    /// The held-back tail, at the end of a choice that did not stop on a stop text.
    public mutating func flush() -> String {
        defer { held = "" }
        return isStopped ? "" : held
    }

    /// `text` cut before its first stop text, and whether one was found.
    public static func cut(_ text: String, stops: [String]) -> (text: String, stopped: Bool) {
        var filter = StopTextFilter(stops: stops)
        let shown = filter.append(text)
        return filter.isStopped ? (shown, true) : (shown + filter.flush(), false)
    }

    private func earliestStop(in text: String) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}
