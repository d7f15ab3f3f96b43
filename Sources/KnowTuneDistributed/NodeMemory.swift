// Implements reading how much memory this node has for new allocations (Linux `MemAvailable`); does not decide
// anything with it.
import Foundation

public enum NodeMemory {
    /// `MemAvailable` of /proc/meminfo in bytes, or nil where there is none.
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kibibytes = Int(fields[1]) { return kibibytes * 1024 }
        }
        return nil
    }
}
