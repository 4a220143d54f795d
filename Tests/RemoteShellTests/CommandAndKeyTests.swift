import Foundation
import RemoteShell
import XCTest

/// Tests that need no SSH server: quoting, key files, fingerprints.
final class CommandAndKeyTests: XCTestCase {
    func testQuotingLeavesPlainWordsAndSingleQuotesTheRest() {
        XCTAssertEqual(Command("useradd", "-m", "alice").commandLine, "useradd -m alice")
        XCTAssertEqual(Command("echo", "").commandLine, "echo ''")
        XCTAssertEqual(Command("echo", "a b").commandLine, "echo 'a b'")
        XCTAssertEqual(Command("echo", "it's").commandLine, #"echo 'it'\''s'"#)
        XCTAssertEqual(Command("echo", "'; rm -rf / #").commandLine, #"echo ''\''; rm -rf / #'"#)
        XCTAssertEqual(Command("FOO=bar").commandLine, "'FOO=bar'")
        XCTAssertEqual(Command.script(#"echo "$1""#, arguments: ["$(x)"]).commandLine, #"sh -c 'echo "$1"' sh '$(x)'"#)
    }

    func testRootCommandsGoThroughSudoForOtherUsers() {
        let command = Command.script(#"cat > "$1""#, arguments: ["/etc/it's"])
        XCTAssertEqual(command.asRoot(loggedInAs: "root"), command)
        XCTAssertEqual(command.asRoot(loggedInAs: "deploy").commandLine, "sudo -n -- " + command.commandLine)
        XCTAssertEqual(Command("chpasswd").asRoot(loggedInAs: "deploy").commandLine, "sudo -n -- chpasswd")
    }

    func testQuotedWordsRoundTripThroughALocalShell() throws {
        for value in RemoteShellTests.hostileStrings {
            let output = try runTool("/bin/sh", "-c", Command("printf", "%s", value).commandLine)
            XCTAssertEqual(output, value, value.debugDescription)
        }
    }

    func testEd25519KeyFileParsesAndFingerprintMatchesSSHKeygen() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remoteshell-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for type in ["ed25519", "ecdsa"] {
            let path = directory.appendingPathComponent(type).path
            try runTool("/usr/bin/ssh-keygen", "-q", "-t", type, "-N", "", "-C", "comment", "-f", path)
            let publicLine = try String(contentsOfFile: path + ".pub", encoding: .utf8)
            let key = try SSHPrivateKey(contentsOfFile: path)
            XCTAssertEqual(key.publicKeyLine, publicLine.split(separator: " ").prefix(2).joined(separator: " "))
            let expected = try runTool("/usr/bin/ssh-keygen", "-l", "-f", path + ".pub").split(separator: " ")[1]
            XCTAssertEqual(try SSHHostKey(openSSHPublicKey: publicLine).fingerprint, String(expected))
        }
    }

    func testEncryptedAndMalformedKeysAreRefusedClearly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remoteshell-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("encrypted").path
        try runTool("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "secret phrase", "-f", path)
        XCTAssertThrowsError(try SSHPrivateKey(contentsOfFile: path)) { error in
            XCTAssertEqual((error as? RemoteShellError)?.kind, .invalidPrivateKey)
            XCTAssertTrue("\(error)".contains("encrypted"), "\(error)")
        }
        XCTAssertThrowsError(
            try SSHPrivateKey(openSSHFileContents: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
        ) { error in
            XCTAssertEqual((error as? RemoteShellError)?.kind, .invalidPrivateKey)
        }
        XCTAssertThrowsError(try SSHPrivateKey(openSSHFileContents: "-----BEGIN RSA PRIVATE KEY-----")) { error in
            XCTAssertEqual((error as? RemoteShellError)?.kind, .invalidPrivateKey)
        }
    }

    func testErrorDescriptionNamesKindAndHost() {
        let error = RemoteShellError(
            .authentication, host: "[10.0.0.5]:2222", message: "server refused password authentication for user root")
        XCTAssertEqual("\(error)", "authentication ([10.0.0.5]:2222): server refused password authentication for user root")
    }
}
