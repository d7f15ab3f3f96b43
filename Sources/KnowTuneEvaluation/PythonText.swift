// Implements the few pieces of CPython 3 `str` behaviour that the metric definitions depend on:
// what counts as whitespace, `str.split()` with no separator, `str.rstrip()` and `str.lower()`
// (with its final-sigma rule, which Swift's `lowercased()` lacks); does not
// implement any other string method, and works on Unicode scalars (Python code points), never on
// Swift `Character`s, because Python iterates code points and compares them without normalisation.

/// A piece of text as Python sees it: a sequence of code points.
typealias CodePoints = [Unicode.Scalar]

enum PythonText {
    /// Whether `scalar` is whitespace for CPython's `str.isspace()`, `str.split()` and the `\s`
    /// class of `re` (all three use `Py_UNICODE_ISSPACE`).
    ///
    /// The set is bidirectional class WS/B/S or category Zs. It includes the ASCII separators
    /// U+001C–U+001F and U+0085, but not U+200B (zero width space) or U+180E, unlike some other
    /// definitions. Checked against Python 3.11 by enumerating every code point.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
             0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The code points of `text`, exactly as Python's `list(text)` would give them.
    static func codePoints(_ text: String) -> CodePoints {
        Array(text.unicodeScalars)
    }

    /// A `String` holding exactly these code points (Swift stores them unnormalised).
    static func string(_ codePoints: some Sequence<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: codePoints)
        return String(view)
    }

    /// Python's `text.split()`: runs of non-whitespace, with leading and trailing whitespace
    /// dropped; an all-whitespace or empty text gives no pieces.
    static func splitOnWhitespace(_ text: some Collection<Unicode.Scalar>) -> [CodePoints] {
        var pieces: [CodePoints] = []
        var current: CodePoints = []
        for scalar in text {
            if isWhitespace(scalar) {
                if !current.isEmpty {
                    pieces.append(current)
                    current.removeAll(keepingCapacity: true)
                }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    /// Whether the text has at least one non-whitespace code point, i.e. `len(text.split()) > 0`.
    static func hasNonWhitespace(_ text: some Sequence<Unicode.Scalar>) -> Bool {
        text.contains { !isWhitespace($0) }
    }

    /// Python's `text.rstrip()`: drops trailing whitespace.
    static func trimmingTrailingWhitespace(_ text: CodePoints) -> CodePoints {
        var end = text.endIndex
        while end > text.startIndex, isWhitespace(text[end - 1]) { end -= 1 }
        return Array(text[..<end])
    }

    /// Python's `text.lower()`: each code point's full Unicode lowercase mapping, except that
    /// capital sigma becomes final sigma "ς" when a cased letter precedes it and none follows it
    /// (case-ignorable code points skipped both ways), as CPython's `handle_capital_sigma` does.
    static func lowercased(_ text: String) -> String {
        let scalars = codePoints(text)
        var result = ""
        for (index, scalar) in scalars.enumerated() {
            if scalar == "\u{03A3}" {
                result.unicodeScalars.append(isFinalSigma(scalars, at: index) ? "\u{03C2}" : "\u{03C3}")
            } else {
                result.append(scalar.properties.lowercaseMapping)
            }
        }
        return result
    }

    private static func isFinalSigma(_ scalars: CodePoints, at index: Int) -> Bool {
        var before = index - 1
        while before >= 0, scalars[before].properties.isCaseIgnorable { before -= 1 }
        guard before >= 0, scalars[before].properties.isCased else { return false }
        var after = index + 1
        while after < scalars.count, scalars[after].properties.isCaseIgnorable { after += 1 }
        return after == scalars.count || !scalars[after].properties.isCased
    }
}
