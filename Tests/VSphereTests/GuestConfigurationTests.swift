import Foundation
import XCTest

@testable import VSphere

final class GuestConfigurationTests: XCTestCase {
    func testCryptMatchesOpenSSL() throws {
        for (password, salt) in [("s3cret!", "saltsalt"), ("a much longer password with spaces and ümlauts", "0123456789abcdefXYZ")] {
            let expected = try run("/usr/bin/openssl", ["passwd", "-6", "-salt", salt, password])
            XCTAssertEqual(CryptSHA512.hash(password: password, salt: salt), expected)
        }
    }

    func testCryptOfEmptyPasswordMatchesGlibc() {
        // openssl refuses an empty password; this is glibc's crypt("", "$6$abc").
        XCTAssertEqual(
            CryptSHA512.hash(password: "", salt: "abc"),
            "$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD."
        )
    }

    func testCryptSpecificationVectors() {
        // From Ulrich Drepper's SHA-crypt specification.
        XCTAssertEqual(
            CryptSHA512.hash(password: "Hello world!", salt: "saltstring"),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        )
        XCTAssertEqual(
            CryptSHA512.hash(password: "Hello world!", salt: "saltstringsaltstring", rounds: 10000),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        )
    }

    func testRandomSaltVerifies() {
        let hash = CryptSHA512.hash(password: "pa55")
        XCTAssertTrue(hash.hasPrefix("$6$"))
        XCTAssertTrue(CryptSHA512.verify(password: "pa55", hash: hash))
        XCTAssertFalse(CryptSHA512.verify(password: "pa56", hash: hash))
        XCTAssertNotEqual(hash, CryptSHA512.hash(password: "pa55"), "salts are random")
    }

    func testRoundTripAndNoClearPassword() throws {
        let configuration = GuestConfiguration(
            hostName: "web-01",
            ipv4: .init(address: "10.20.0.11", prefixLength: 24, gateway: "10.20.0.1", dns: ["10.20.0.2", "8.8.8.8"]),
            passwordHash: CryptSHA512.hash(password: "TopSecret-123", salt: "abcdefgh")
        )
        let entries = try configuration.extraConfig()
        XCTAssertEqual(
            entries.map(\.key), ["guestinfo.metadata", "guestinfo.metadata.encoding", "guestinfo.userdata", "guestinfo.userdata.encoding"])
        XCTAssertEqual(entries[1].value, "base64")
        let everything =
            entries.map(\.value).joined()
            + entries.compactMap { Data(base64Encoded: $0.value).map { String(decoding: $0, as: UTF8.self) } }.joined()
        XCTAssertFalse(everything.contains("TopSecret-123"))
        let userdata = String(decoding: try XCTUnwrap(Data(base64Encoded: entries[2].value)), as: UTF8.self)
        XCTAssertTrue(userdata.hasPrefix("#cloud-config\n"))
        XCTAssertTrue(userdata.contains("\"hashed_passwd\":\"$6$abcdefgh$"))
        let metadata = String(decoding: try XCTUnwrap(Data(base64Encoded: entries[0].value)), as: UTF8.self)
        XCTAssertTrue(metadata.contains("\"local-hostname\":\"web-01\""))
        XCTAssertTrue(metadata.contains("\"addresses\":[\"10.20.0.11\\/24\"]") || metadata.contains("\"addresses\":[\"10.20.0.11/24\"]"))

        XCTAssertEqual(try GuestConfiguration(extraConfig: entries), configuration)
    }

    /// SPEC BEY-9: the platform's public key reaches the role's user through cloud-init, with
    /// passwordless sudo when that user is not root; the password hash is optional (removed once applied).
    func testAuthorizedKeysAndSudoForTheRoleUser() throws {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMCdFYcbgWrUuWI0Ck5fX4QmySZJKWTeo1gVNlLa4NB flotilla"
        let configuration = GuestConfiguration(
            hostName: "db-01", ipv4: .init(address: "10.20.0.12", prefixLength: 24),
            passwordHash: CryptSHA512.hash(password: "TopSecret-123", salt: "abcdefgh"), user: "deploy",
            authorizedKeys: [key], sudo: GuestConfiguration.passwordlessSudo)
        let entries = try configuration.extraConfig()
        let userdata = String(decoding: try XCTUnwrap(Data(base64Encoded: entries[2].value)), as: UTF8.self)
        XCTAssertTrue(userdata.contains("\"ssh_authorized_keys\":[\"\(key)\"]"), userdata)
        XCTAssertTrue(userdata.contains("\"sudo\":\"ALL=(ALL) NOPASSWD:ALL\""), userdata)
        XCTAssertTrue(userdata.contains("\"lock_passwd\":false"), userdata)
        XCTAssertEqual(try GuestConfiguration(extraConfig: entries), configuration)

        // Without the hash (after the guest applied it) the user, its keys and sudo stay, and
        // nothing asks cloud-init to change password login or lock the password people use.
        var applied = configuration
        applied.passwordHash = nil
        let appliedEntries = try applied.extraConfig()
        let appliedUserdata = String(decoding: try XCTUnwrap(Data(base64Encoded: appliedEntries[2].value)), as: UTF8.self)
        XCTAssertFalse(appliedUserdata.contains("hashed_passwd"), appliedUserdata)
        XCTAssertFalse(appliedUserdata.contains("$6$"), appliedUserdata)
        XCTAssertFalse(appliedUserdata.contains("ssh_pwauth"), appliedUserdata)
        XCTAssertTrue(appliedUserdata.contains("\"lock_passwd\":false"), appliedUserdata)
        XCTAssertEqual(try GuestConfiguration(extraConfig: appliedEntries), applied)

        // root needs no sudo, and cloud-init must not refuse root's key logins (disable_root).
        let rootEntries = try GuestConfiguration(hostName: "web-01", authorizedKeys: [key]).extraConfig()
        let rootUserdata = String(decoding: try XCTUnwrap(Data(base64Encoded: rootEntries[2].value)), as: UTF8.self)
        XCTAssertTrue(rootUserdata.contains("\"disable_root\":false"), rootUserdata)
        XCTAssertFalse(rootUserdata.contains("sudo"), rootUserdata)
        XCTAssertEqual(try GuestConfiguration(extraConfig: rootEntries).authorizedKeys, [key])
    }

    func testLastOccurrenceWins() throws {
        let old = try GuestConfiguration(hostName: "old", ipv4: .init(address: "10.0.0.1", prefixLength: 8)).extraConfig()
        let new = try GuestConfiguration(hostName: "new").extraConfig()
        let parsed = try GuestConfiguration(extraConfig: old + [ExtraConfigEntry(key: "unrelated", value: "x")] + new)
        XCTAssertEqual(parsed.hostName, "new")
        XCTAssertNil(parsed.ipv4, "the newer configuration is DHCP")
    }

    func testMissingAndBadValues() {
        XCTAssertThrowsError(try GuestConfiguration(extraConfig: [])) { error in
            XCTAssertEqual(error as? GuestConfiguration.DecodingError, .missingKey("guestinfo.metadata"))
        }
        XCTAssertThrowsError(
            try GuestConfiguration(extraConfig: [
                ExtraConfigEntry(key: "guestinfo.metadata", value: "x"),
                ExtraConfigEntry(key: "guestinfo.metadata.encoding", value: "gzip+base64"),
            ])
        ) { error in
            XCTAssertEqual(error as? GuestConfiguration.DecodingError, .unsupportedEncoding("gzip+base64"))
        }
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
