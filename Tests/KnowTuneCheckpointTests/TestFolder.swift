// Implements a scratch folder per test, removed afterwards; does not touch anything outside it.
import Foundation

struct TestFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("knowtune-checkpoint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func appending(_ component: String) -> String {
        (path as NSString).appendingPathComponent(component)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
