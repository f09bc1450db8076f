//! The network lock: between the dump and the restore, the connection's
//! packets are dropped, never answered.
//!
//! Without it, a segment from the peer that arrives while no socket owns
//! the 4-tuple is answered with a RST (`tcp_v4_send_reset()`), and the
//! peer sees the move. CRIU locks with netfilter for the same reason
//! (criu/netfilter.c, `nf_lock_connection()`; libsoccr's header asks the
//! caller to do it). klab drives nftables through the `nft` tool: one table
//! per lock, holding a set of 4-tuples and two chains that drop matching
//! packets on input and output:
//!
//! ```text
//! table inet klab_tcp_repair_<pid>_<n> {
//!   set conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; ... }
//!   chain input  { hook input  priority raw; ip daddr . tcp dport . ip saddr . tcp sport @conns4 drop }
//!   chain output { hook output priority raw; ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop }
//! }   (and conns6 with ip6 for IPv6 connections)
//! ```
//!
//! Set elements are `local addr . local port . remote addr . remote port`.
//! Packets marked [`crate::inject::SOCCR_MARK`] pass: a restore forges
//! the peer's FIN with that mark.
//! Lifetime: [`NetLock`] is an RAII guard; dropping it deletes the table.
//! Every live lock of the process is also listed in a registry, so a signal
//! handler can release them all ([`release_all`]) before the process dies.
//! A lock meant to outlive the process (a dump whose restore comes later)
//! is renamed `klab_tcp_repair_keep_<hash of the tuples>` by
//! [`NetLock::keep`], which [`release_kept`] finds from the image;
//! [`clear_stale`] deletes those and any lock whose process is gone.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::LockError;

/// Prefix of every table klab creates.
pub const TABLE_PREFIX: &str = "klab_tcp_repair_";
const KEEP_PREFIX: &str = "klab_tcp_repair_keep_";

/// Tables locked by this process and not yet released: `(table, netns)`.
static ACTIVE: Mutex<Vec<(String, Option<PathBuf>)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A connection's packets, dropped in both directions while held.
#[derive(Debug)]
pub struct NetLock {
    table: String,
    netns: Option<PathBuf>,
    live: bool,
}

/// Runs `nft` (in `netns` when given, through `nsenter`) with `script` on
/// standard input, or with `args`.
fn nft(netns: Option<&Path>, args: &[&str], script: Option<&str>) -> Result<String, LockError> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("nft");
            c
        }
        None => Command::new("nft"),
    };
    cmd.args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let tool = if netns.is_some() {
        "nsenter nft"
    } else {
        "nft"
    };
    let mut child = cmd.spawn().map_err(|source| LockError::Spawn {
        tool: tool.into(),
        source,
    })?;
    if let (Some(s), Some(mut stdin)) = (script, child.stdin.take()) {
        stdin
            .write_all(s.as_bytes())
            .map_err(|source| LockError::Spawn {
                tool: tool.into(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| LockError::Spawn {
            tool: tool.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(LockError::Nft {
            command: format!(
                "{tool} {}{}",
                args.join(" "),
                netns
                    .map(|n| format!(" (netns {})", n.display()))
                    .unwrap_or_default()
            ),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The nft script that creates `table` dropping `conns`.
pub fn lock_script(table: &str, conns: &[(SocketAddr, SocketAddr)]) -> String {
    let elems = |v4: bool| -> Vec<String> {
        conns
            .iter()
            .filter(|(l, _)| l.is_ipv4() == v4)
            .map(|(l, r)| format!("{} . {} . {} . {}", l.ip(), l.port(), r.ip(), r.port()))
            .collect()
    };
    let set = |name: &str, ty: &str, e: Vec<String>| {
        let elements = if e.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", e.join(", "))
        };
        format!("  set {name} {{ type {ty} . inet_service . {ty} . inet_service;{elements} }}\n")
    };
    format!(
        "table inet {table} {{\n{}{}  chain input {{ type filter hook input priority raw; policy accept;\n    \
         meta mark {mark:#x} accept\n    \
         ip daddr . tcp dport . ip saddr . tcp sport @conns4 drop\n    \
         ip6 daddr . tcp dport . ip6 saddr . tcp sport @conns6 drop\n  }}\n  \
         chain output {{ type filter hook output priority raw; policy accept;\n    \
         meta mark {mark:#x} accept\n    \
         ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop\n    \
         ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop\n  }}\n}}\n",
        set("conns4", "ipv4_addr", elems(true)),
        set("conns6", "ipv6_addr", elems(false)),
        mark = crate::inject::SOCCR_MARK,
    )
}

impl NetLock {
    /// Drops every packet of `conns` (`(local, remote)` pairs) in the
    /// network namespace at `netns` (a `/run/netns/NAME` or `/proc/PID/ns/net`
    /// path), or in the caller's when `None`. Returns once the rules are in
    /// the kernel.
    ///
    /// # Errors
    /// `nft` missing or failing (its message included).
    pub fn lock(
        netns: Option<&Path>,
        conns: &[(SocketAddr, SocketAddr)],
    ) -> Result<NetLock, LockError> {
        let table = format!(
            "{TABLE_PREFIX}{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let script = lock_script(&table, conns);
        // Registered before nft runs: a signal arriving mid-command still
        // finds the table to delete.
        registry().push((table.clone(), netns.map(Path::to_owned)));
        if let Err(e) = nft(netns, &["-f", "-"], Some(&script)) {
            unregister(&table);
            return Err(e);
        }
        Ok(NetLock {
            table,
            netns: netns.map(Path::to_owned),
            live: true,
        })
    }

    /// The nftables table holding the lock.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Releases the lock.
    ///
    /// # Errors
    /// `nft` failing; the lock is then still listed for [`release_all`].
    pub fn unlock(mut self) -> Result<(), LockError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), LockError> {
        if !self.live {
            return Ok(());
        }
        delete_table(self.netns.as_deref(), &self.table)?;
        self.live = false;
        unregister(&self.table);
        Ok(())
    }

    /// Leaves the lock in place after this process exits (a dump whose
    /// restore is another command): the table is recreated under a `keep`
    /// name, which [`clear_stale`] removes. Returns that name.
    ///
    /// # Errors
    /// `nft` failing; the lock is then released on drop as usual.
    pub fn keep(mut self, conns: &[(SocketAddr, SocketAddr)]) -> Result<String, LockError> {
        let kept = kept_name(conns);
        // The kept table goes in before the old one goes out: no gap.
        nft(
            self.netns.as_deref(),
            &["-f", "-"],
            Some(&lock_script(&kept, conns)),
        )?;
        self.release()?;
        Ok(kept)
    }
}

impl Drop for NetLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn registry() -> std::sync::MutexGuard<'static, Vec<(String, Option<PathBuf>)>> {
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unregister(table: &str) {
    registry().retain(|(t, _)| t != table);
}

fn delete_table(netns: Option<&Path>, table: &str) -> Result<(), LockError> {
    nft(netns, &["delete", "table", "inet", table], None).map(|_| ())
}

/// The name of the kept lock for `conns`: `klab_tcp_repair_keep_<hash>`,
/// a 64-bit FNV-1a hash of the tuples, so the restore of the same
/// connections finds it.
pub fn kept_name(conns: &[(SocketAddr, SocketAddr)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (l, r) in conns {
        for b in format!("{l} {r};").bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{KEEP_PREFIX}{h:016x}")
}

/// Deletes the kept lock for `conns` in a namespace, if there is one.
/// Returns whether a table was deleted.
///
/// # Errors
/// `nft` failing for another reason than a missing table.
pub fn release_kept(
    netns: Option<&Path>,
    conns: &[(SocketAddr, SocketAddr)],
) -> Result<bool, LockError> {
    let name = kept_name(conns);
    if !list(netns)?.iter().any(|(t, _)| *t == name) {
        return Ok(false);
    }
    delete_table(netns, &name).map(|()| true)
}

/// Deletes every lock this process still holds (for a signal handler: the
/// process is about to exit). Returns how many were deleted.
pub fn release_all() -> usize {
    let list = std::mem::take(&mut *registry());
    list.iter()
        .filter(|(t, ns)| delete_table(ns.as_deref(), t).is_ok())
        .count()
}

/// Deletes the locks this process holds in one namespace. Returns how
/// many were deleted.
pub fn release_in(netns: &Path) -> usize {
    let mine: Vec<(String, Option<PathBuf>)> = {
        let mut reg = registry();
        let (mine, rest) = std::mem::take(&mut *reg)
            .into_iter()
            .partition(|(_, ns)| ns.as_deref() == Some(netns));
        *reg = rest;
        mine
    };
    mine.iter()
        .filter(|(t, ns)| delete_table(ns.as_deref(), t).is_ok())
        .count()
}

/// klab lock tables in a namespace: `(name, owner pid)`; the pid is `None`
/// for kept locks.
pub fn list(netns: Option<&Path>) -> Result<Vec<(String, Option<i32>)>, LockError> {
    let out = nft(netns, &["list", "tables"], None)?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
        .filter(|t| t.starts_with(TABLE_PREFIX))
        .map(|t| {
            let pid = if t.starts_with(KEEP_PREFIX) {
                None
            } else {
                t[TABLE_PREFIX.len()..]
                    .split('_')
                    .next()
                    .and_then(|p| p.parse().ok())
            };
            (t.to_owned(), pid)
        })
        .collect())
}

fn alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// Deletes stale locks in a namespace: kept ones, and those whose process
/// is gone (or every klab lock, with `all`). Returns the tables deleted and
/// those left because their process is alive.
///
/// # Errors
/// `nft` failing.
pub fn clear_stale(
    netns: Option<&Path>,
    all: bool,
) -> Result<(Vec<String>, Vec<String>), LockError> {
    let mut deleted = Vec::new();
    let mut left = Vec::new();
    for (table, pid) in list(netns)? {
        let stale = all || pid.is_none_or(|p| !alive(p));
        if stale {
            delete_table(netns, &table)?;
            deleted.push(table);
        } else {
            left.push(table);
        }
    }
    Ok((deleted, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lists_both_directions_of_each_tuple() {
        let conns = [(
            "127.77.0.10:7000".parse().unwrap(),
            "127.77.1.1:40000".parse().unwrap(),
        )];
        let s = lock_script("klab_tcp_repair_1_0", &conns);
        assert!(s.contains("elements = { 127.77.0.10 . 7000 . 127.77.1.1 . 40000 }"));
        assert!(s.contains("ip daddr . tcp dport . ip saddr . tcp sport @conns4 drop"));
        assert!(s.contains("ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop"));
        assert!(!s.contains(
            "conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; elements"
        ));
    }
}
