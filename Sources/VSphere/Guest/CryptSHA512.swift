import Crypto

/// SHA-512 crypt (`$6$salt$hash`, Ulrich Drepper's specification), the password hash Linux
/// `/etc/shadow` and cloud-init's `hashed_passwd` take, so the clear password never leaves Flotilla.
public enum CryptSHA512 {
    public static let defaultRounds = 5000
    private static let alphabet = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Hashes with a fresh random 16-character salt.
    public static func hash(password: String, rounds: Int = defaultRounds) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = String(decoding: (0..<16).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] }, as: UTF8.self)
        return hash(password: password, salt: salt, rounds: rounds)
    }

    /// Hashes with a given salt (at most 16 characters are used, as the specification says).
    public static func hash(password: String, salt: String, rounds: Int = defaultRounds) -> String {
        let key = Array(password.utf8)
        let saltBytes = Array(salt.utf8.prefix(16))
        let rounds = min(max(rounds, 1000), 999_999_999)

        var alternate = SHA512()
        alternate.update(data: key)
        alternate.update(data: saltBytes)
        alternate.update(data: key)
        let alternateDigest = Array(alternate.finalize())

        var context = SHA512()
        context.update(data: key)
        context.update(data: saltBytes)
        context.update(data: repeated(alternateDigest, count: key.count))
        var length = key.count
        while length > 0 {
            context.update(data: length & 1 != 0 ? alternateDigest : key)
            length >>= 1
        }
        var digest = Array(context.finalize())

        var keyContext = SHA512()
        for _ in 0..<key.count { keyContext.update(data: key) }
        let pBytes = repeated(Array(keyContext.finalize()), count: key.count)

        var saltContext = SHA512()
        for _ in 0..<(16 + Int(digest[0])) { saltContext.update(data: saltBytes) }
        let sBytes = repeated(Array(saltContext.finalize()), count: saltBytes.count)

        for round in 0..<rounds {
            var step = SHA512()
            step.update(data: round & 1 != 0 ? pBytes : digest)
            if round % 3 != 0 { step.update(data: sBytes) }
            if round % 7 != 0 { step.update(data: pBytes) }
            step.update(data: round & 1 != 0 ? digest : pBytes)
            digest = Array(step.finalize())
        }

        let roundsPart = rounds == defaultRounds ? "" : "rounds=\(rounds)$"
        return "$6$\(roundsPart)\(String(decoding: saltBytes, as: UTF8.self))$\(encode(digest))"
    }

    /// Checks a password against a `$6$` hash.
    public static func verify(password: String, hash: String) -> Bool {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[1] == "6" else { return false }
        var rounds = defaultRounds
        var saltIndex = 2
        if parts[2].hasPrefix("rounds="), let value = Int(parts[2].dropFirst(7)) {
            rounds = value
            saltIndex = 3
        }
        guard parts.count == saltIndex + 2 else { return false }
        return Self.hash(password: password, salt: String(parts[saltIndex]), rounds: rounds) == hash
    }

    private static func repeated(_ digest: [UInt8], count: Int) -> [UInt8] {
        (0..<count).map { digest[$0 % digest.count] }
    }

    /// The specification's byte order for the custom base-64 output.
    private static func encode(_ digest: [UInt8]) -> String {
        let groups: [(Int, Int, Int)] = [
            (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
            (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
            (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
        ]
        var output: [UInt8] = []
        func append(_ value: UInt32, characters: Int) {
            var value = value
            for _ in 0..<characters {
                output.append(alphabet[Int(value & 0x3f)])
                value >>= 6
            }
        }
        for (a, b, c) in groups {
            append(UInt32(digest[a]) << 16 | UInt32(digest[b]) << 8 | UInt32(digest[c]), characters: 4)
        }
        append(UInt32(digest[63]), characters: 2)
        return String(decoding: output, as: UTF8.self)
    }
}
