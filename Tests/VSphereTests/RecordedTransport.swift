import Foundation
import VSphere

/// A transport that answers from recorded XML by method name, and keeps what was sent. Bodies
/// are delivered in small odd-sized chunks, as a network would, to exercise incremental parsing.
final class RecordedTransport: SOAPTransport {
    private let answers: Locked<[String: [(status: Int, body: [UInt8])]]>
    let sent = Locked<[SOAPHTTPRequest]>([])
    let chunkSize: Int

    init(_ answers: [String: [(status: Int, body: String)]], chunkSize: Int = 97) {
        self.answers = Locked(answers.mapValues { list in list.map { ($0.status, Array($0.body.utf8)) } })
        self.chunkSize = chunkSize
    }

    func send(_ request: SOAPHTTPRequest, receiving body: ([UInt8]) throws -> Void) async throws -> SOAPHTTPResponse {
        sent.withLockedValue { $0.append(request) }
        let method = Self.method(in: request.body)
        let answer = try answers.withLockedValue { answers in
            guard var queue = answers[method], !queue.isEmpty else {
                throw VSphereError.invalidResponse("no recorded answer for \(method)")
            }
            // The last answer repeats.
            let answer = queue.count > 1 ? queue.removeFirst() : queue[0]
            answers[method] = queue
            return answer
        }
        for start in stride(from: 0, to: answer.body.count, by: chunkSize) {
            try body(Array(answer.body[start..<min(start + chunkSize, answer.body.count)]))
        }
        return SOAPHTTPResponse(status: answer.status, sessionCookie: "\"recorded-session\"")
    }

    func shutdown() async throws {}

    var methods: [String] { sent.withLockedValue { $0.map { Self.method(in: $0.body) } } }

    static func method(in body: String) -> String {
        guard let start = body.range(of: "<soapenv:Body><") else { return "" }
        let rest = body[start.upperBound...]
        return String(rest.prefix { $0 != " " && $0 != ">" })
    }
}

/// Recorded vcsim responses (trimmed), with vcsim's own prefix choices.
enum Recorded {
    static func envelope(_ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>\(body)</soapenv:Body></soapenv:Envelope>
        """
    }

    static let serviceContent = envelope(
        """
        <RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><name>VMware vCenter Server</name><fullName>VMware vCenter Server 6.5.0 build-5973321 (Sim)</fullName><vendor>VMware, Inc.</vendor><version>6.5.0</version><build>5973321</build><osType>linux-x64</osType><productLineId>vpx</productLineId><apiType>VirtualCenter</apiType><apiVersion>6.5</apiVersion><instanceUuid>dbed6e0c-bd88-4ef6-b594-21283e1c677f</instanceUuid></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><perfManager type="PerformanceManager">PerfMgr</perfManager><virtualDiskManager type="VirtualDiskManager">virtualDiskManager</virtualDiskManager></returnval></RetrieveServiceContentResponse>
        """)

    static let login = envelope(
        """
        <LoginResponse xmlns="urn:vim25"><returnval><key>52d1b2a6</key><userName>flotilla</userName></returnval></LoginResponse>
        """)

    static let notAuthenticated = envelope(
        """
        <soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>session is not authenticated</faultstring><detail><NotAuthenticatedFault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="NotAuthenticated"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail></soapenv:Fault>
        """)

    static let invalidLogin = envelope(
        """
        <soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>
        """)

    static let createView = envelope(
        """
        <CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">session[52d1b2a6]view-1</returnval></CreateContainerViewResponse>
        """)

    static let destroyView = envelope("<DestroyViewResponse xmlns=\"urn:vim25\"></DestroyViewResponse>")

    static func vmObject(_ id: Int, name: String, template: Bool = false, extraConfig: String = "") -> String {
        """
        <objects><obj type="VirtualMachine">vm-\(id)</obj><propSet><name>name</name><val xsi:type="xsd:string">\(name)</val></propSet><propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">\(template ? "poweredOff" : "poweredOn")</val></propSet><propSet><name>config.template</name><val xsi:type="xsd:boolean">\(template)</val></propSet><propSet><name>guest.ipAddress</name><val xsi:type="xsd:string">10.0.0.\(id)</val></propSet><propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">2</val></propSet><propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">2048</val></propSet><propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1000</key><busNumber>0</busNumber></VirtualDevice><VirtualDevice xsi:type="VirtualDisk"><key>2000</key><capacityInKB>16777216</capacityInKB><controllerKey>1000</controllerKey></VirtualDevice><VirtualDevice xsi:type="VirtualDisk"><key>2001</key><capacityInKB>1048576</capacityInKB><capacityInBytes>1073741824</capacityInBytes><controllerKey>1000</controllerKey></VirtualDevice></val></propSet><propSet><name>config.extraConfig</name><val xsi:type="ArrayOfOptionValue">\(extraConfig)</val></propSet><missingSet><path>guest.hostName</path><fault><fault xsi:type="InvalidProperty"></fault></fault></missingSet></objects>
        """
    }

    /// Real vCenter pages: a first page with a token, then the rest.
    static let firstPage = envelope(
        """
        <RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-2</token>\(vmObject(1, name: "web-01"))\(vmObject(2, name: "tpl-web", template: true))</returnval></RetrievePropertiesExResponse>
        """)

    static let secondPage = envelope(
        """
        <ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>\(vmObject(3, name: "db-01", extraConfig: "<OptionValue xsi:type=\"OptionValue\"><key>guestinfo.role</key><value xsi:type=\"xsd:string\">old</value></OptionValue><OptionValue xsi:type=\"OptionValue\"><key>guestinfo.role</key><value xsi:type=\"xsd:string\">mysql</value></OptionValue><OptionValue xsi:type=\"OptionValue\"><key>other</key><value xsi:type=\"xsd:string\">x</value></OptionValue>"))</returnval></ContinueRetrievePropertiesExResponse>
        """)

    static let taskError = envelope(
        """
        <RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-7</obj><propSet><name>info</name><val xsi:type="TaskInfo"><key>task-7</key><task type="Task">task-7</task><name>PowerOnVM_Task</name><state>error</state><error><fault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="InvalidPowerState"><requestedState>poweredOn</requestedState><existingState>poweredOn</existingState></fault><localizedMessage>The attempted operation cannot be performed in the current state (Powered on).</localizedMessage></error></val></propSet></objects></returnval></RetrievePropertiesExResponse>
        """)
}

/// A value behind a lock, for test doubles shared across tasks.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLockedValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
