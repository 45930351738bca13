//! Per-process CPU time (`proc/<pid>/stat` of every process) and the processes that used the
//! most of it since the previous read.
//!
//! The tracker keeps each live process's cumulative ticks from one read to the next, so the
//! CPU time a process used in the window is a difference of two of its own readings. A process
//! is known by its pid *and* its start time, so a reused pid starts afresh. Processes that
//! vanished are dropped at every read: the state holds exactly the processes of the last read.
//!
//! Cost: one `read_dir` of `proc` and one read of each process's `stat` into a buffer reused
//! from read to read; a name is allocated only for a process not seen before (or renamed), and
//! for the few processes returned.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use infermon_model::raw::{ProcessCpuRaw, Reading};

use crate::error::HwError;
use crate::paths::{self, Paths};

/// How many processes a host reading names: the top ones by CPU time used in the window.
pub const TOP_PROCESSES: usize = 8;

/// What `/proc/<pid>/stat` says about a process's CPU time, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStatCpu<'a> {
    /// Field 1, `pid`.
    pub pid: u32,
    /// Field 2, `comm`, without its parentheses (it may hold spaces and parentheses itself).
    pub comm: &'a str,
    /// Field 14, `utime`: user-mode time, clock ticks.
    pub utime: u64,
    /// Field 15, `stime`: kernel-mode time, clock ticks.
    pub stime: u64,
    /// Field 22, `starttime`: when the process started, clock ticks after boot.
    pub starttime: u64,
}

impl PidStatCpu<'_> {
    /// `utime + stime`, clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// Parses pid, command name, `utime`, `stime` and `starttime` from a `/proc/<pid>/stat` line.
///
/// The command name is what lies between the first `(` and the *last* `)`: the kernel does not
/// escape it, so `4242 (my (odd) proc) S ...` names `my (odd) proc`. Fields after the name are
/// counted from that last `)`. Allocates nothing unless the line is malformed.
pub fn parse_pid_stat_cpu(text: &str) -> Result<PidStatCpu<'_>, HwError> {
    let path = || paths::canonical("proc/<pid>/stat");
    let open = text
        .find('(')
        .ok_or_else(|| HwError::malformed(&path(), "no \"(\" opening the command name"))?;
    let close = text
        .rfind(')')
        .filter(|close| *close > open)
        .ok_or_else(|| HwError::malformed(&path(), "no \")\" closing the command name"))?;
    let pid_text = text[..open].trim();
    let pid = pid_text.parse().map_err(|_| HwError::BadField {
        path: path(),
        field: "pid".into(),
        value: pid_text.to_string(),
        expected: "a process id",
    })?;
    let comm = &text[open + 1..close];
    // After ")" comes field 3 (state) at index 0: field N is at index N - 3.
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let ticks = |value: Option<&str>, name: &str| -> Result<u64, HwError> {
        let value = value.ok_or_else(|| HwError::MissingField {
            path: path(),
            field: name.to_string(),
        })?;
        value.parse().map_err(|_| HwError::BadField {
            path: path(),
            field: name.to_string(),
            value: value.to_string(),
            expected: "a non-negative integer number of clock ticks",
        })
    };
    let utime = ticks(fields.nth(11), "utime")?;
    let stime = ticks(fields.next(), "stime")?;
    let starttime = ticks(fields.nth(6), "starttime")?;
    Ok(PidStatCpu {
        pid,
        comm,
        utime,
        stime,
        starttime,
    })
}

/// A process as of the last read.
#[derive(Debug, Clone)]
struct Seen {
    /// `starttime`: tells a reused pid from the process seen before.
    starttime: u64,
    /// `utime + stime`, ticks.
    ticks: u64,
    /// `comm`.
    name: String,
}

/// Every process's cumulative CPU ticks from the previous read, and the buffers reused by each
/// read.
#[derive(Debug, Clone)]
pub(crate) struct ProcessCpuTracker {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`); `None`: unknown, nothing is read.
    ticks_per_second: Option<u64>,
    /// When the previous successful read happened.
    prev_at: Option<Instant>,
    /// The processes of the previous read, by pid.
    seen: HashMap<u32, Seen>,
    /// The map being filled by the current read (swapped with `seen` at its end, then
    /// cleared, so vanished processes are dropped and the capacity is kept).
    next: HashMap<u32, Seen>,
    /// One `stat` file's bytes.
    buf: Vec<u8>,
    /// Ticks used in the window, by pid, for ranking.
    used: Vec<(u64, u32)>,
}

impl ProcessCpuTracker {
    /// A tracker with no previous read.
    pub(crate) fn new(ticks_per_second: Option<u64>) -> Self {
        ProcessCpuTracker {
            ticks_per_second,
            prev_at: None,
            seen: HashMap::new(),
            next: HashMap::new(),
            buf: Vec::with_capacity(512),
            used: Vec::new(),
        }
    }

    /// Uses `hz` clock ticks per second.
    pub(crate) fn set_ticks_per_second(&mut self, hz: u64) {
        self.ticks_per_second = Some(hz);
    }

    /// Reads every process under `root/proc` at time `now` and returns the
    /// [`TOP_PROCESSES`] that used the most CPU time since the previous read, most first (ties:
    /// lowest pid first). Processes that used none are left out. The first read has no window:
    /// it only records where each process stands and returns an empty list.
    ///
    /// A process that vanishes while being read is skipped; only an unreadable `proc` directory
    /// or an unknown clock tick rate makes the reading unavailable.
    pub(crate) fn read(&mut self, paths: &Paths, now: Instant) -> Reading<Vec<ProcessCpuRaw>> {
        let proc_dir = paths.at(paths::PROC);
        let Some(hz) = self.ticks_per_second.filter(|hz| *hz > 0) else {
            return Reading::unavailable(format!(
                "{}: clock tick rate unknown (sysconf(_SC_CLK_TCK) failed)",
                proc_dir.display()
            ));
        };
        let entries = match std::fs::read_dir(&proc_dir) {
            Ok(entries) => entries,
            Err(e) => return Reading::unavailable(HwError::io(&proc_dir, e).to_string()),
        };
        let window = self
            .prev_at
            .filter(|prev| now > *prev)
            .map(|prev| (now - prev).as_secs_f64());
        self.next.clear();
        self.used.clear();
        let mut stat_path = PathBuf::from(&proc_dir);
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name.to_str().and_then(parse_pid_dir) else {
                continue;
            };
            stat_path.push(&file_name);
            stat_path.push(paths::process::STAT);
            let read = read_into(&stat_path, &mut self.buf);
            stat_path.pop();
            stat_path.pop();
            if read.is_err() {
                continue; // exited since the directory was listed
            }
            let text = String::from_utf8_lossy(&self.buf);
            let Ok(stat) = parse_pid_stat_cpu(&text) else {
                continue;
            };
            let ticks = stat.cpu_ticks();
            let (used, name) = match self.seen.remove(&pid) {
                Some(before) if before.starttime == stat.starttime => {
                    let name = if before.name == stat.comm {
                        before.name
                    } else {
                        stat.comm.to_string()
                    };
                    (ticks.checked_sub(before.ticks), name)
                }
                // New since the previous read (or a reused pid): all its time is in the window.
                _ => (Some(ticks), stat.comm.to_string()),
            };
            if let (Some(_), Some(used)) = (window, used.filter(|u| *u > 0)) {
                self.used.push((used, pid));
            }
            self.next.insert(
                pid,
                Seen {
                    starttime: stat.starttime,
                    ticks,
                    name,
                },
            );
        }
        std::mem::swap(&mut self.seen, &mut self.next);
        self.next.clear();
        self.prev_at = Some(now);
        self.used
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let hz = hz as f64;
        let top = self
            .used
            .iter()
            .take(TOP_PROCESSES)
            .filter_map(|&(used, pid)| {
                let seen = self.seen.get(&pid)?;
                Some(ProcessCpuRaw {
                    pid,
                    name: seen.name.clone(),
                    cpu_seconds_total: seen.ticks as f64 / hz,
                    window_cpu_seconds: Some(used as f64 / hz),
                    window_seconds: window,
                })
            })
            .collect();
        Reading::ok(top)
    }

    /// How many processes the tracker holds (those of the last read).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// A `proc` entry that is a process directory: all digits.
fn parse_pid_dir(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Reads the whole file at `path` into `buf`, replacing what it held.
fn read_into(path: &std::path::Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A stat line with the given name and times (the other fields as a real one has them).
    fn stat_line(pid: u32, comm: &str, utime: u64, stime: u64, starttime: u64) -> String {
        format!(
            "{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 3 0 \
             {starttime} 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0\n"
        )
    }

    fn write_stat(root: &std::path::Path, pid: u32, line: &str) {
        let dir = root.join("proc").join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stat"), line).unwrap();
    }

    #[test]
    fn parses_plain_and_odd_names() {
        let line = stat_line(4242, "ffmpeg", 250, 75, 9000);
        let s = parse_pid_stat_cpu(&line).unwrap();
        assert_eq!(
            s,
            PidStatCpu {
                pid: 4242,
                comm: "ffmpeg",
                utime: 250,
                stime: 75,
                starttime: 9000,
            }
        );
        assert_eq!(s.cpu_ticks(), 325);
        let odd = stat_line(7, "my (odd) ) proc", 1, 2, 3);
        let s = parse_pid_stat_cpu(&odd).unwrap();
        assert_eq!((s.pid, s.comm), (7, "my (odd) ) proc"));
        assert_eq!((s.utime, s.stime, s.starttime), (1, 2, 3));
        // A name that looks like more fields does not shift them.
        let fake_fields = stat_line(8, "a) R 9 9 9 9", 4, 5, 6);
        let s = parse_pid_stat_cpu(&fake_fields).unwrap();
        assert_eq!(
            (s.comm, s.utime, s.stime, s.starttime),
            ("a) R 9 9 9 9", 4, 5, 6)
        );
        // An empty name still parses.
        let empty = stat_line(2, "", 0, 0, 0);
        let s = parse_pid_stat_cpu(&empty).unwrap();
        assert_eq!(s.comm, "");
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |line: &str| parse_pid_stat_cpu(line).unwrap_err().to_string();
        assert_eq!(
            err("4242 x) S"),
            "/proc/<pid>/stat: no \"(\" opening the command name"
        );
        assert_eq!(
            err("4242 (x S 1"),
            "/proc/<pid>/stat: no \")\" closing the command name"
        );
        assert_eq!(
            err("42a (x) S"),
            "/proc/<pid>/stat: field \"pid\" has value \"42a\": expected a process id"
        );
        assert_eq!(
            err("4242 (x) S 1 2"),
            "/proc/<pid>/stat: field \"utime\" is missing"
        );
        assert_eq!(
            err("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20"),
            "/proc/<pid>/stat: field \"starttime\" is missing"
        );
        assert_eq!(
            err(&stat_line(1, "x", 5, 6, 7).replace(" 6 0 0 20", " -6 0 0 20")),
            "/proc/<pid>/stat: field \"stime\" has value \"-6\": expected a non-negative integer number of clock ticks"
        );
    }

    #[test]
    fn pid_directories_are_all_digits() {
        assert_eq!(parse_pid_dir("4242"), Some(4242));
        for name in ["self", "thread-self", "", "12a", "+1", "99999999999"] {
            assert_eq!(parse_pid_dir(name), None, "{name}");
        }
    }

    #[test]
    fn ranks_by_ticks_in_the_window_and_forgets_vanished_processes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_stat(root, 100, &stat_line(100, "busy", 1000, 200, 50));
        write_stat(root, 200, &stat_line(200, "idle", 5000, 0, 60));
        write_stat(root, 300, &stat_line(300, "gone", 10, 10, 70));
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        let paths = Paths::new(root);
        let mut t = ProcessCpuTracker::new(Some(100));
        let t0 = Instant::now();
        assert_eq!(t.read(&paths, t0), Reading::ok(Vec::new()));
        assert_eq!(t.len(), 3);

        write_stat(root, 100, &stat_line(100, "busy", 1300, 250, 50));
        std::fs::remove_dir_all(root.join("proc/300")).unwrap();
        // pid 400 started in the window; pid 200's ticks did not move.
        write_stat(root, 400, &stat_line(400, "new one", 20, 5, 80));
        let Reading::Ok { value } = t.read(&paths, t0 + Duration::from_millis(2000)) else {
            panic!("unavailable");
        };
        assert_eq!(
            value,
            vec![
                ProcessCpuRaw {
                    pid: 100,
                    name: "busy".into(),
                    cpu_seconds_total: 15.5,
                    window_cpu_seconds: Some(3.5),
                    window_seconds: Some(2.0),
                },
                ProcessCpuRaw {
                    pid: 400,
                    name: "new one".into(),
                    cpu_seconds_total: 0.25,
                    window_cpu_seconds: Some(0.25),
                    window_seconds: Some(2.0),
                },
            ]
        );
        assert_eq!(t.len(), 3);
        assert!(!t.seen.contains_key(&300));
    }

    #[test]
    fn a_reused_pid_counts_from_zero_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_stat(root, 5, &stat_line(5, "old", 900, 100, 10));
        let paths = Paths::new(root);
        let mut t = ProcessCpuTracker::new(Some(100));
        let t0 = Instant::now();
        t.read(&paths, t0);
        // Same pid, later start, fewer ticks: a different process.
        write_stat(root, 5, &stat_line(5, "new", 30, 20, 500));
        let r = t.read(&paths, t0 + Duration::from_secs(1));
        let top = r.value().unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].name, "new");
        assert_eq!(top[0].window_cpu_seconds, Some(0.5));
        // Same process renamed by exec: the delta is its own, the name the new one.
        write_stat(root, 5, &stat_line(5, "renamed", 40, 20, 500));
        let top = t
            .read(&paths, t0 + Duration::from_secs(2))
            .value()
            .unwrap()
            .clone();
        assert_eq!(
            (top[0].name.as_str(), top[0].window_cpu_seconds),
            ("renamed", Some(0.1))
        );
    }

    #[test]
    fn keeps_only_the_top_eight_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for pid in 1..=12u32 {
            write_stat(root, pid, &stat_line(pid, "w", 0, 0, 1));
        }
        write_stat(root, 13, "garbage\n");
        let paths = Paths::new(root);
        let mut t = ProcessCpuTracker::new(Some(100));
        let t0 = Instant::now();
        t.read(&paths, t0);
        for pid in 1..=12u32 {
            write_stat(root, pid, &stat_line(pid, "w", u64::from(pid) * 10, 0, 1));
        }
        let r = t.read(&paths, t0 + Duration::from_secs(1));
        let pids: Vec<u32> = r.value().unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(pids, [12, 11, 10, 9, 8, 7, 6, 5]);
        assert_eq!(t.len(), 12);
    }

    #[test]
    fn unavailable_without_proc_or_tick_rate() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let now = Instant::now();
        let why = ProcessCpuTracker::new(Some(100)).read(&paths, now);
        let why = why.reason().unwrap();
        assert!(
            why.contains(&dir.path().join("proc").display().to_string()),
            "{why}"
        );
        assert!(why.contains("no such file or directory"), "{why}");
        let why = ProcessCpuTracker::new(None).read(&paths, now);
        assert!(why.reason().unwrap().contains("clock tick rate unknown"));
    }
}
