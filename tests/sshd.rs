//! A real OpenSSH `sshd` on 127.0.0.1 for the weather tests: its own config, host key, client
//! key and served folder in a temp dir, a dedicated test user with a password, `internal-sftp`.
//! It runs in the foreground as our child, so it is stopped by its own PID (and its
//! per-connection children by theirs), never by name.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub use crate::util::free_port;

pub const USER: &str = "ingest-sftp-test";
pub const PASSWORD: &str = "correct-horse-7Q!";
const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The folder the server serves (readable by the test user).
    pub remote: PathBuf,
    /// The client's private key (no passphrase).
    pub key: PathBuf,
    /// A known_hosts file that trusts this server.
    pub known_hosts: PathBuf,
    child: Option<Child>,
}

impl Sshd {
    /// Starts a server on a free port.
    pub fn start() -> Sshd {
        ensure_user();
        let dir = tempfile::tempdir().unwrap();
        // tempdir is 0700; the test user must be able to reach the served folder.
        chmod(dir.path(), 0o755);
        let remote = dir.path().join("Meteo2");
        std::fs::create_dir(&remote).unwrap();
        chmod(&remote, 0o755);
        keygen(&dir.path().join("host_key"));
        let key = dir.path().join("client_key");
        keygen(&key);
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let mut sshd = Sshd {
            known_hosts: dir.path().join("known_hosts"),
            dir,
            port: 0,
            remote,
            key,
            child: None,
        };
        sshd.port = free_port();
        std::fs::write(&sshd.known_hosts, sshd.known_hosts_line()).unwrap();
        sshd.write_config();
        sshd.restart();
        sshd
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…` for this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut parts = public.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// The fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.dir.path().join("host_key.pub"))
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             AllowUsers {USER}\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
            port = self.port,
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
    }

    /// Starts (again) on the same port with the same keys, and waits until it accepts.
    pub fn restart(&mut self) {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (./tools/test does)"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        // On the real clock even when the tests run under a shifted one: a server keeps its
        // own, and sftp-server under libfaketime reports shifted mtimes.
        let child = crate::util::on_real_clock(&mut Command::new(SSHD))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "sshd exited: {}", self.log());
            assert!(
                Instant::now() < deadline,
                "sshd never listened: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and every connection process it forked (SIGKILL), by PID.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            for p in descendants(pid).into_iter().chain([pid]) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(p.to_string())
                    .status();
            }
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Writes a remote file as the server's owner would, modified `age` ago.
    pub fn put(&self, name: &str, body: &[u8], age: Duration) {
        let path = self.remote.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(body).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
        chmod(&path, 0o644);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test user, created once per machine, with a known password and a home folder.
fn ensure_user() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let exists = Command::new("id")
            .arg("-u")
            .arg(USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !exists {
            let status = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", USER])
                .status()
                .unwrap();
            assert!(
                status.success(),
                "useradd {USER} failed (tests run as root)"
            );
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let line = format!("{USER}:{PASSWORD}\n");
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    });
}

/// A new ed25519 key pair at `path` and `path.pub`, without a passphrase.
pub(crate) fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
}

/// The fingerprint of a public key file as `ssh-keygen -lf` prints it (`SHA256:…`).
pub(crate) fn fingerprint_of(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every process whose parent chain leads to `pid`, read from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "PID (comm) STATE PPID ...": comm may hold spaces, so parse after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (p, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            out.push(*p);
            frontier.push(*p);
        }
    }
    out
}
