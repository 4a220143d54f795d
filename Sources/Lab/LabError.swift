/// Why the lab could not do what it was asked.
public enum LabError: Error, CustomStringConvertible, Sendable {
    case missingPrerequisite(String)
    case vcsimDidNotStart(String)
    case invalidGuest(vm: String, reason: String)

    public var description: String {
        switch self {
        case .missingPrerequisite(let what): "missing prerequisite: \(what)"
        case .vcsimDidNotStart(let detail): "vcsim did not start or cannot be reached: \(detail)"
        case .invalidGuest(let vm, let reason): "VM \(vm) cannot become a lab guest: \(reason)"
        }
    }
}
