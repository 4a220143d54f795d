/// Why a command did not do what it was asked; its outcome is the program's exit code.
struct ClientFailure: Error {
    enum Outcome: Int32 {
        /// A job failed, the server answered an error, or it could not be reached.
        case failed = 1
        /// The command line, or input the server rejects as invalid (HTTP 400).
        case badUsage = 2
        /// Not signed in, a revoked token, or not allowed (HTTP 401/403).
        case refused = 3
        /// No such environment, VM, job or user (HTTP 404).
        case notFound = 4
    }

    var outcome: Outcome
    var message: String

    init(_ outcome: Outcome, _ message: String) {
        self.outcome = outcome
        self.message = message
    }

    /// An error answer of the server, with the server's message.
    init(status: Int, message: String) {
        switch status {
        case 400, 415, 422: outcome = .badUsage
        case 401, 403: outcome = .refused
        case 404: outcome = .notFound
        default: outcome = .failed
        }
        self.message = message
    }
}
