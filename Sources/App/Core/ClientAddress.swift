import Vapor

extension Request {
    /// The operator's IP address as written to the audit log.
    ///
    /// `X-Forwarded-For` is honoured only when the direct peer is a trusted proxy, and then
    /// read from the right, skipping trusted hops, so a client cannot spoof its address by
    /// sending the header itself.
    public var operatorIP: String {
        let trusted = application.flotilla.config.trustedProxies
        guard let peerText = remoteAddress?.ipAddress, let peer = IPAddress(peerText) else {
            return "unknown"
        }
        guard trusted.contains(where: { $0.contains(peer) }) else { return peer.description }
        let forwarded = headers[.xForwardedFor]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in forwarded.reversed() {
            guard let address = IPAddress(hop) else { break }
            client = address
            if !trusted.contains(where: { $0.contains(address) }) { break }
        }
        return client.description
    }

    /// Whether the browser reached Flotilla over HTTPS (directly or through a trusted proxy).
    /// The header is looked at before the peer (every replayed kept answer asks this; most
    /// requests carry no such header, and parsing the peer's address costs more).
    var arrivedOverHTTPS: Bool {
        if url.scheme == "https" { return true }
        guard headers.first(name: "X-Forwarded-Proto")?.lowercased() == "https",
            let peerText = remoteAddress?.ipAddress, let peer = IPAddress(peerText)
        else { return false }
        return application.flotilla.config.trustedProxies.contains(where: { $0.contains(peer) })
    }
}
