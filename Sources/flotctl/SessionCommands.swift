import ArgumentParser
import Foundation

/// `flotctl login URL`: signs in once with a user name and password, creates a personal API
/// token through the API and keeps it (the password is never stored).
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in to a Flotilla server and keep an API token for the other commands.",
        discussion: "The token is stored with the server in $XDG_CONFIG_HOME/flotilla/client.json (mode 0600).")

    @Argument(help: "The server, e.g. https://flotilla.example.com or http://127.0.0.1:8080.") var server: String
    @Option(name: .shortAndLong, help: "User name (asked when not given).") var username: String?
    @Flag(help: "Read the password from the first line of standard input instead of asking.") var passwordStdin = false
    @Flag(help: "Use an existing API token (flt_…) read from standard input instead of signing in.") var tokenStdin = false
    @Option(help: "PEM file of the certificate authorities to trust for an https server.") var caFile: String?
    @Option(help: "Days until the new token expires (default: valid until `flotctl logout` revokes it).") var expiresInDays: Int?

    func validate() throws {
        guard !(passwordStdin && tokenStdin) else { throw ValidationError("give --password-stdin or --token-stdin, not both") }
    }

    func run() async throws {
        let url = try APIClient.serverURL(server)
        let caPath = caFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        // A missing or unreadable earlier login is simply replaced.
        let previous = try? LoginStore.load()
        let login = try await APIClient.with(server: url, caFile: caPath, credential: .none) { anonymous in
            tokenStdin ? try await checkToken(anonymous) : try await signIn(anonymous)
        }
        try LoginStore.save(
            StoredLogin(server: url.absoluteString, username: login.username, token: login.token, tokenID: login.id, caFile: caPath))
        print("Logged in to \(url.absoluteString) as \(login.username); the token is kept in \(LoginStore.file.path)")
        // Logging in again replaces the token, so repeated logins leave no live tokens behind.
        if let previous, previous.server == url.absoluteString, previous.tokenID != login.id {
            do {
                try await previous.revokeToken()
            } catch {
                let reason = (error as? ClientFailure)?.message ?? "\(error)"
                Terminal.printError("flotctl: the previous token could not be revoked (\(reason)); revoke it on My account")
            }
        }
    }

    /// Signs in with the password, creates a token with the session, then ends the session.
    private func signIn(_ anonymous: APIClient) async throws -> (username: String, token: String, id: String?) {
        let name = try username ?? Terminal.ask("User name")
        let password = passwordStdin ? try Terminal.secretFromStandardInput() : try Terminal.askSecret("Password for \(name)")
        let answer = try await anonymous.send(.POST, "/login", json: Shapes.Credentials(username: name, password: password))
        let cookie = answer.headers["Set-Cookie"].compactMap { $0.split(separator: ";").first.map(String.init) }.joined(separator: "; ")
        guard !cookie.isEmpty, let csrfToken = answer.headers.first(name: "X-CSRF-Token") else {
            throw ClientFailure(.failed, "the server signed in without a session cookie and CSRF token; is it a Flotilla server?")
        }
        let session = anonymous.with(credential: .session(cookie: cookie, csrfToken: csrfToken))
        let tokenName = "flotctl on \(ProcessInfo.processInfo.hostName)"
        let created = try await session.post(
            Shapes.Token.self, "/tokens", json: Shapes.NewToken(name: String(tokenName.prefix(64)), expiresInDays: expiresInDays)
        ).value
        try await session.send(.POST, "/logout")
        guard let secret = created.token else { throw ClientFailure(.failed, "the server created a token but did not show it") }
        return (name, secret, created.id)
    }

    /// Checks a token given on standard input by listing its owner's tokens with it.
    private func checkToken(_ anonymous: APIClient) async throws -> (username: String, token: String, id: String?) {
        let token = try Terminal.secretFromStandardInput().trimmingCharacters(in: .whitespaces)
        _ = try await anonymous.with(credential: .token(token)).get([Shapes.Token].self, "/tokens")
        return (username ?? "(token)", token, nil)
    }
}

/// `flotctl logout`: revokes the stored token on the server and forgets it.
struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Revoke the stored API token and remove it from this machine.")

    func run() async throws {
        let login = try LoginStore.load()
        try await login.revokeToken()
        try LoginStore.remove()
        print("Logged out of \(login.server)\(login.tokenID == nil ? "" : "; the token is revoked")")
    }
}

extension StoredLogin {
    /// Revokes this login's token on the server; a token already revoked or expired counts as revoked.
    func revokeToken() async throws {
        guard let tokenID else { return }
        do {
            _ = try await APIClient.with(server: try APIClient.serverURL(server), caFile: caFile, credential: .token(token)) { client in
                try await client.send(.DELETE, "/tokens/\(tokenID)")
            }
        } catch let failure as ClientFailure where failure.outcome == .refused || failure.outcome == .notFound {
            // Nothing is left to revoke.
        }
    }
}
