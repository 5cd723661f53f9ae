//! The CPU time a server spends, from `/proc`: user + system time of the
//! process (all its threads), of its reaped children (`cutime`, `cstime`),
//! and of its live descendants, so a forking server's children count
//! whether or not they have been reaped when the sample is taken.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::time::Duration;

/// CPU time of the process tree rooted at `pid` so far.
pub fn tree_cpu(pid: u32) -> io::Result<Duration> {
    let ticks = ticks_per_second();
    let root = read_stat(pid)?;
    let mut total = root.cpu_ticks;
    // Live descendants: their own time and their reaped children's. A
    // child that exits between two samples moves from here into the
    // parent's `cutime` once reaped, so the sum stays continuous.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut cpu: HashMap<u32, u64> = HashMap::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(other) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A process may exit while we scan: skip it.
        if let Ok(stat) = read_stat(other) {
            children.entry(stat.ppid).or_default().push(other);
            cpu.insert(other, stat.cpu_ticks);
        }
    }
    let mut stack = children.get(&pid).cloned().unwrap_or_default();
    while let Some(p) = stack.pop() {
        total += cpu.get(&p).copied().unwrap_or(0);
        if let Some(grand) = children.get(&p) {
            stack.extend_from_slice(grand);
        }
    }
    Ok(Duration::from_micros(total * 1_000_000 / ticks))
}

struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    cpu_ticks: u64,
}

fn read_stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: unexpected format")))
}

/// Parses `/proc/PID/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ppid = u32::try_from(field(4)?).ok()?;
    let cpu_ticks = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(Stat { ppid, cpu_ticks })
}

fn ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100, // USER_HZ on every Linux architecture we run on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 11 22 33 44 20 0 1 0 5 0 0";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.cpu_ticks, 11 + 22 + 33 + 44);
    }

    #[test]
    fn counts_this_process() {
        let me = std::process::id();
        assert!(tree_cpu(me).is_ok());
    }
}
