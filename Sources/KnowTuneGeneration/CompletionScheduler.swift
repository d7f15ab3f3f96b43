// Implements continuous batching for callers that arrive at any time (the API server's requests, the local teacher's
// concurrent records): sequences wait in a bounded queue, and one decode thread admits waiting sequences into free
// batch slots before every step (a sequence joins the running batch at the next step), steps the whole batch, and
// hands each token to its sequence's sink. A cancelled sequence (its client went away, or a stop text was found)
// leaves the batch before the next step. Does not parse requests or decode text.
import Foundation
import KnowTuneModel

/// Why the scheduler did not take sequences.
public enum SchedulerRefusal: Error, Equatable {
    /// The queue holds this many waiting sequences already.
    case queueFull(capacity: Int)
    case shuttingDown
}

/// What a sequence's sink receives: each token, or the end of a sequence that was cancelled or could not start.
public enum SequenceUpdate: Sendable {
    case token(Int32, finishReason: FinishReason?)
    /// The sequence was cancelled before it finished; no more updates follow.
    case cancelled
}

/// A sequence to schedule, with the sink its updates go to (called on the decode thread; must not block).
public struct ScheduledSequence {
    public let request: DecodeRequest
    public let sink: @Sendable (SequenceUpdate) -> Void

    public init(request: DecodeRequest, sink: @escaping @Sendable (SequenceUpdate) -> Void) {
        self.request = request
        self.sink = sink
    }
}

public final class CompletionScheduler: @unchecked Sendable {
    /// Sequences that may wait for a slot; more are refused (HTTP 429).
    public let queueCapacity: Int
    public let batchCapacity: Int
    private let batch: DecodeBatch
    private let condition = NSCondition()
    private var queue: [ScheduledSequence] = []
    private var cancelled: Set<Int> = []
    private var running = true
    private var nextTag = 0
    private var thread: Thread?
    /// Statistics of all steps so far (read under the lock).
    private var totals = GenerationStatistics()
    /// Sinks of the sequences in the batch, by tag; only the decode thread touches it.
    private var sinks: [Int: @Sendable (SequenceUpdate) -> Void] = [:]

    public init(decoder: IncrementalDecoder, stopTokenIds: Set<Int32>, contextLength: Int, queueCapacity: Int) {
        batch = DecodeBatch(decoder: decoder, stopTokenIds: stopTokenIds, contextLength: contextLength)
        batchCapacity = decoder.batchCapacity
        self.queueCapacity = queueCapacity
    }

    /// Starts the decode thread.
    public func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "knowtune-decode"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Decodes one sequence and waits for it (for callers on their own threads; several may wait at once, and their
    /// sequences share batches). Returns the generated ids, the last a stop id when one ended it.
    public func generate(_ request: DecodeRequest) throws -> [Int32] {
        let outcome = SequenceOutcome()
        try submit([ScheduledSequence(request: request) { update in outcome.receive(update) }])
        outcome.finished.wait()
        guard !outcome.wasCancelled else { throw SchedulerRefusal.shuttingDown }
        return outcome.ids
    }

    /// Stops the decode thread after its current step; waiting and running sequences get `.cancelled`.
    public func shutdown() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// A fresh tag for a sequence.
    public func makeTag() -> Int {
        condition.lock()
        defer { condition.unlock() }
        nextTag += 1
        return nextTag
    }

    /// Queues all of `sequences` (one request's choices), or none when the queue lacks room for them
    /// (`SchedulerRefusal`).
    public func submit(_ sequences: [ScheduledSequence]) throws {
        condition.lock()
        defer { condition.unlock() }
        guard running else { throw SchedulerRefusal.shuttingDown }
        guard queue.count + sequences.count <= queueCapacity else { throw SchedulerRefusal.queueFull(capacity: queueCapacity) }
        queue += sequences
        condition.signal()
    }

    /// Ends the sequences `tags` wherever they are; each gets `.cancelled` unless it has already finished.
    public func cancel(_ tags: [Int]) {
        condition.lock()
        cancelled.formUnion(tags)
        condition.signal()
        condition.unlock()
    }

    /// Sequences waiting for a slot and sequences decoding.
    public var load: (waiting: Int, running: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (queue.count, batchCapacity - batch.freeSlotCount)
    }

    public var statistics: GenerationStatistics {
        condition.lock()
        defer { condition.unlock() }
        return totals
    }

    // MARK: - The decode thread

    private func loop() {
        while true {
            condition.lock()
            while running, batch.isIdle, queue.isEmpty { condition.wait() }
            guard running else {
                let waiting = queue
                queue.removeAll()
                condition.unlock()
                for sequence in waiting { sequence.sink(.cancelled) }
                for sink in sinks.values { sink(.cancelled) }
                sinks.removeAll()
                return
            }
            // Cancellations first, so their slots serve this step's admissions.
            var dropped: [ScheduledSequence] = []
            if !cancelled.isEmpty {
                queue.removeAll { sequence in
                    guard cancelled.contains(sequence.request.tag) else { return false }
                    dropped.append(sequence)
                    return true
                }
                for tag in cancelled where batch.finish(tag: tag) {
                    if let sink = sinks.removeValue(forKey: tag) { sink(.cancelled) }
                }
                cancelled.removeAll()
            }
            let admitted = Array(queue.prefix(batch.freeSlotCount))
            queue.removeFirst(admitted.count)
            condition.unlock()

            for sequence in dropped { sequence.sink(.cancelled) }
            for sequence in admitted { sinks[sequence.request.tag] = sequence.sink }
            deliver(batch.admit(admitted.map(\.request)))
            deliver(batch.step())

            condition.lock()
            totals = batch.statistics
            condition.unlock()
        }
    }

    private func deliver(_ events: [DecodeEvent]) {
        for event in events {
            guard let sink = sinks[event.tag] else { continue }
            if event.finishReason != nil { sinks.removeValue(forKey: event.tag) }
            sink(.token(event.token, finishReason: event.finishReason))
        }
    }
}

/// One waited-for sequence's tokens, filled on the decode thread.
private final class SequenceOutcome: @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private(set) var ids: [Int32] = []
    private(set) var wasCancelled = false

    func receive(_ update: SequenceUpdate) {
        switch update {
        case let .token(token, finishReason):
            ids.append(token)
            if finishReason != nil { finished.signal() }
        case .cancelled:
            wasCancelled = true
            finished.signal()
        }
    }
}
