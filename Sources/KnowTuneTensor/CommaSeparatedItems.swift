// Implements the reading of LLaMA-Factory's comma-separated flag values (`--dataset a,b`, `--adapter_name_or_path A,B`):
// items are trimmed and empty items dropped, as LF's `split(",")` + `strip()` leaves them usable.
import Foundation

extension String {
    /// The non-empty, trimmed items of a comma-separated flag value.
    public var commaSeparatedItems: [String] {
        split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
