import Foundation

extension Lab {
    /// Programs the lab runs, on the machine and (through the overlay) inside guests, with the
    /// Debian package that provides each.
    static let requiredPrograms: [(path: String, package: String)] = [
        ("/usr/sbin/ip", "iproute2"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/setsid", "util-linux"),
        ("/usr/bin/setpriv", "util-linux"),
        ("/usr/sbin/runuser", "util-linux"),
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/sbin/ifup", "ifupdown"),
        ("/usr/bin/redis-server", "redis-server"),
        ("/usr/sbin/mariadbd", "mariadb-server"),
        ("/usr/sbin/rabbitmq-server", "rabbitmq-server"),
        ("/usr/bin/python3", "python3"),
        ("/usr/bin/git", "git"),
        ("/usr/bin/svn", "subversion"),
        // The lab's repository servers on the bridge (lab-repos.sh).
        ("/usr/bin/svnserve", "subversion"),
        ("/usr/bin/svnadmin", "subversion"),
        ("/usr/lib/git-core/git-daemon", "git"),
        ("/usr/bin/ping", "iputils-ping"),
        // Guests whose user is not root run root's commands with `sudo -n` (cloud-init's sudo rule).
        ("/usr/bin/sudo", "sudo"),
    ]

    /// What keeps the lab from running on this machine, each named so it can be installed;
    /// empty when nothing is missing.
    public static func missingPrerequisites(_ configuration: LabConfiguration = LabConfiguration()) -> [String] {
        var missing: [String] = []
        if geteuid() != 0 {
            missing.append("root (the lab creates namespaces, links and mounts)")
        }
        for program in requiredPrograms where !FileManager.default.isExecutableFile(atPath: program.path) {
            missing.append("\(program.path) (Debian package \(program.package))")
        }
        let filesystems = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        if !filesystems.contains("\toverlay\n") {
            missing.append("overlay filesystem in the kernel (modprobe overlay)")
        }
        for script in ["lab-host.sh", "lab-repos.sh", "guest-init.sh", "stand-in.py"] {
            let path = configuration.scriptsDirectory + "/" + script
            if !FileManager.default.isReadableFile(atPath: path) {
                missing.append("lab script \(path)")
            }
        }
        if case .launch(let launch) = configuration.vcsim, !FileManager.default.isExecutableFile(atPath: launch.executable),
            !FileManager.default.isExecutableFile(atPath: "/usr/bin/go")
        {
            missing.append(
                "vcsim launcher \(launch.executable) or Go to build it (Debian packages golang-go golang-github-vmware-govmomi-dev)")
        }
        return missing
    }
}
