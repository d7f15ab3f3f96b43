// Implements OpenAI's `stop` texts over streamed text: pieces pass through except a tail that could still grow into a
// stop text, which is held back; once a stop text appears the text before it is released and the choice is over.
// Matches Unicode scalars literally (as the reply's bytes are matched), so a stop text is found the same way whether
// the text arrives whole or token by token, even where a token boundary splits a character. Does not decode tokens.
public struct StopTextFilter {
    public let stops: [String]
    private let stopScalars: [[Unicode.Scalar]]
    private let longest: Int
    private var held: [Unicode.Scalar] = []
    public private(set) var isStopped = false

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        stopScalars = self.stops.map { Array($0.unicodeScalars) }
        longest = stopScalars.map(\.count).max() ?? 0
    }

    /// Adds a piece of text; returns what may be shown now.
    public mutating func append(_ piece: String) -> String {
        guard !isStopped else { return "" }
        guard !stops.isEmpty else { return piece }
        held += piece.unicodeScalars
        if let cut = earliestStop() {
            isStopped = true
            defer { held = [] }
            return Self.text(held[..<cut])
        }
        // Keep the longest tail that is the start of some stop text.
        var keep = min(longest - 1, held.count)
        while keep > 0, !stopScalars.contains(where: { $0.starts(with: held[(held.count - keep)...]) }) { keep -= 1 }
        let shown = Self.text(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return shown
    }

    /// The held-back tail, at the end of a choice that did not stop on a stop text.
    public mutating func flush() -> String {
        defer { held = [] }
        return isStopped ? "" : Self.text(held[...])
    }

    /// `text` cut before its first stop text, and whether one was found.
    public static func cut(_ text: String, stops: [String]) -> (text: String, stopped: Bool) {
        var filter = StopTextFilter(stops: stops)
        let shown = filter.append(text)
        return filter.isStopped ? (shown, true) : (shown + filter.flush(), false)
    }

    /// Where the first stop text begins in the held scalars.
    private func earliestStop() -> Int? {
        for start in held.indices {
            let rest = held[start...]
            if stopScalars.contains(where: { rest.starts(with: $0) }) { return start }
        }
        return nil
    }

    private static func text(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
