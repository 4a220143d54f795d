import Fluent
import Vapor

/// The four kinds of audit log entry (SPEC LOG-1).
public enum LogKind: String, Codable, CaseIterable, Sendable {
    case login, operation, error, upgrade
}

/// The result of an audited action.
public enum LogResult: String, Codable, CaseIterable, Sendable {
    case success, failure, denied
}

/// One audit log entry (SPEC LOG). Times are stored in UTC.
public final class LogEntry: Model, @unchecked Sendable {
    public static let schema = "log_entries"

    @ID(custom: "id", generatedBy: .database) public var id: Int?
    @Field(key: "kind") public var kind: String
    @Field(key: "time") public var time: Date
    @OptionalField(key: "vm_name") public var vmName: String?
    @OptionalField(key: "vm_role") public var vmRole: String?
    @OptionalField(key: "operator") public var operatorName: String?
    @OptionalField(key: "operator_ip") public var operatorIP: String?
    @Field(key: "action") public var action: String
    @Field(key: "result") public var result: String
    @Field(key: "details") public var details: String

    public init() {}

    public init(
        kind: LogKind, time: Date = Date(), vmName: String? = nil, vmRole: String? = nil,
        operatorName: String?, operatorIP: String?, action: String, result: LogResult, details: String = ""
    ) {
        self.kind = kind.rawValue
        self.time = time
        self.vmName = vmName
        self.vmRole = vmRole
        self.operatorName = operatorName
        self.operatorIP = operatorIP
        self.action = action
        self.result = result.rawValue
        self.details = details
    }
}
