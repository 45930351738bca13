//! Finds local `llama-server` processes and the address they serve on.
//!
//! Reads `<root>/proc/<pid>/cmdline` for processes whose program is `llama-server`, then the
//! TCP sockets it listens on (`/proc/<pid>/fd` socket inodes matched against
//! `/proc/net/tcp{,6}`); when those cannot be read (another user's process) it falls back to
//! `--host`/`--port` on the command line, then to llama-server's default port 8080.

use std::fs;
use std::path::Path;

/// A server found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Process id.
    pub pid: u32,
    /// Base URL to poll, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// How the port was found: `listening-socket`, `argv`, `default`.
    pub how: &'static str,
    /// The process's arguments.
    pub args: Vec<String>,
}

/// Program names recognised as llama.cpp servers.
const PROGRAMS: &[&str] = &["llama-server"];

/// Scans `<root>/proc` for llama-server processes.
pub fn discover(root: &Path) -> Vec<Discovered> {
    let proc_dir = root.join("proc");
    let Ok(entries) = fs::read_dir(&proc_dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args = split_cmdline(&raw);
        let Some(prog) = args.first() else { continue };
        let base = prog.rsplit('/').next().unwrap_or(prog);
        if !PROGRAMS.contains(&base) {
            continue;
        }
        let host = arg_value(&args, &["--host"]).unwrap_or_else(|| "127.0.0.1".to_string());
        let host = match host.as_str() {
            "0.0.0.0" | "::" | "" => "127.0.0.1".to_string(),
            h => h.to_string(),
        };
        let listening = listening_ports(root, pid);
        let (port, how) = if let Some(p) = listening.first() {
            (*p, "listening-socket")
        } else if let Some(p) = arg_value(&args, &["--port"]).and_then(|p| p.parse().ok()) {
            (p, "argv")
        } else {
            (8080, "default")
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        found.push(Discovered {
            pid,
            url: format!("http://{host}:{port}"),
            how,
            args,
        });
    }
    found.sort_by_key(|d| d.pid);
    found
}

/// Splits a NUL-separated `/proc/<pid>/cmdline`.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Value of a flag given as `--flag value` or `--flag=value`.
pub fn arg_value(args: &[String], names: &[&str]) -> Option<String> {
    for (i, a) in args.iter().enumerate() {
        for n in names {
            if a == n {
                return args.get(i + 1).cloned();
            }
            if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// TCP ports in LISTEN state owned by `pid` (socket inodes from its fds), lowest first.
pub fn listening_ports(root: &Path, pid: u32) -> Vec<u16> {
    let fd_dir = root.join("proc").join(pid.to_string()).join("fd");
    let Ok(fds) = fs::read_dir(fd_dir) else {
        return Vec::new();
    };
    let inodes: Vec<u64> = fds
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|t| {
            t.to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = fs::read_to_string(root.join("proc/net").join(table)) {
            ports.extend(
                parse_listening(&text)
                    .into_iter()
                    .filter(|(_, inode)| inodes.contains(inode))
                    .map(|(port, _)| port),
            );
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `(port, inode)` of every LISTEN (state `0A`) row of a `/proc/net/tcp` table.
pub fn parse_listening(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            if *cols.get(3)? != "0A" {
                return None;
            }
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            let inode = cols.get(9)?.parse().ok()?;
            Some((port, inode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn listening_rows() {
        assert_eq!(parse_listening(TCP), vec![(8080, 4242)]);
    }

    #[test]
    fn args() {
        let a: Vec<String> = [
            "llama-server",
            "-m",
            "x.gguf",
            "--port=9001",
            "--host",
            "0.0.0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(arg_value(&a, &["--port"]).as_deref(), Some("9001"));
        assert_eq!(arg_value(&a, &["--host"]).as_deref(), Some("0.0.0.0"));
        assert_eq!(arg_value(&a, &["--nope"]), None);
        assert_eq!(split_cmdline(b"a\0b c\0\0"), vec!["a", "b c"]);
    }

    #[test]
    fn fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = root.join("proc/321");
        fs::create_dir_all(p.join("fd")).unwrap();
        fs::write(
            p.join("cmdline"),
            b"/opt/llama/llama-server\0-m\0m.gguf\0--port\09001\0",
        )
        .unwrap();
        std::os::unix::fs::symlink("socket:[4242]", p.join("fd/3")).unwrap();
        fs::create_dir_all(root.join("proc/net")).unwrap();
        fs::write(root.join("proc/net/tcp"), TCP).unwrap();
        // an unrelated process
        fs::create_dir_all(root.join("proc/99")).unwrap();
        fs::write(root.join("proc/99/cmdline"), b"bash\0").unwrap();
        let d = discover(root);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pid, 321);
        assert_eq!(d[0].url, "http://127.0.0.1:8080");
        assert_eq!(d[0].how, "listening-socket");
        // without readable fds: argv
        fs::remove_file(p.join("fd/3")).unwrap();
        let d = discover(root);
        assert_eq!(
            (d[0].url.as_str(), d[0].how),
            ("http://127.0.0.1:9001", "argv")
        );
    }
}
