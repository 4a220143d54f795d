/// A mailbox: an address in a sane subset of RFC 5321's addr-spec and an optional display name.
///
/// The subset: a dot-atom local part (letters, digits and ``!#$%&'*+-/=?^_`{|}~``, dots not
/// first, last or doubled; no quoted local parts), `@`, and a domain of letters, digits and
/// hyphens in dot-separated labels (no address literals), ASCII only, within RFC 5321's length
/// limits. Nothing that could end a header line or an SMTP command passes, so an address can
/// be written into headers and into MAIL FROM / RCPT TO as it is.
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
    /// `local@domain`.
    public let address: String
    /// A human name shown beside the address ("Flotilla monitor"); any Unicode text without
    /// control characters, encoded as RFC 2047 requires when it is written into a header.
    public let displayName: String?

    /// Throws `MailError` (stage `.composition`, kind `.invalidInput`) naming what is wrong.
    public init(_ address: String, displayName: String? = nil) throws {
        try Self.validate(address: address)
        if let displayName {
            try checkNoControlCharacters(displayName, field: "display name")
            guard displayName.utf8.count <= 256 else {
                throw MailError(.composition, .invalidInput, message: "display name longer than 256 bytes")
            }
        }
        self.address = address
        self.displayName = displayName.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The part after the `@`.
    public var domain: Substring { address[address.index(after: address.lastIndex(of: "@")!)...] }

    public var description: String { displayName.map { "\($0) <\(address)>" } ?? address }

    private static let localPartSymbols = Set("!#$%&'*+-/=?^_`{|}~".utf8)

    private static func validate(address: String) throws {
        func refuse(_ problem: String) -> MailError {
            MailError(.composition, .invalidInput, message: "'\(printable(address))' is not a usable e-mail address: \(problem)")
        }
        guard address.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            throw refuse("only printable ASCII without spaces is accepted")
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw refuse("it needs exactly one @") }
        let (local, domain) = (parts[0], parts[1])
        guard address.utf8.count <= 254 else { throw refuse("longer than 254 characters") }
        guard !local.isEmpty, local.utf8.count <= 64 else { throw refuse("the part before @ must have 1 to 64 characters") }
        let localAtoms = local.split(separator: ".", omittingEmptySubsequences: false)
        guard localAtoms.allSatisfy({ !$0.isEmpty }) else { throw refuse("dots may not start, end or repeat in the part before @") }
        let localAllowed = localAtoms.allSatisfy { atom in
            atom.utf8.allSatisfy { isASCIILetterOrDigit($0) || localPartSymbols.contains($0) }
        }
        guard localAllowed else { throw refuse("the part before @ may contain only letters, digits, dots and !#$%&'*+-/=?^_`{|}~") }
        guard isHostName(domain) else {
            throw refuse("the domain must be dot-separated labels of letters, digits and hyphens")
        }
    }
}

/// Whether `name` is a DNS host name: labels of 1 to 63 letters, digits and hyphens, no
/// hyphen first or last, 253 characters at most.
func isHostName(_ name: Substring) -> Bool {
    guard !name.isEmpty, name.utf8.count <= 253 else { return false }
    return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
            && label.utf8.allSatisfy { isASCIILetterOrDigit($0) || $0 == UInt8(ascii: "-") }
    }
}

func isASCIILetterOrDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}

/// Refuses C0 and C1 control characters (CR and LF among them), DEL and the Unicode line and
/// paragraph separators: a header value with them could end its line and start another header
/// (header injection), here or in whatever reads the decoded header later.
func checkNoControlCharacters(_ text: String, field: String) throws {
    let lineBreaking: Set<Unicode.GeneralCategory> = [.control, .lineSeparator, .paragraphSeparator]
    if let control = text.unicodeScalars.first(where: { lineBreaking.contains($0.properties.generalCategory) }) {
        let code = "U+" + String(control.value, radix: 16, uppercase: true).leftPadded(to: 4)
        throw MailError(
            .composition, .invalidInput,
            message: "the \(field) contains the control character \(code); line breaks and control characters are refused")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
