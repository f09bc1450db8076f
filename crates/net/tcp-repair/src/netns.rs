//! Network namespaces: named ones (`ip netns`, bind-mounted under
//! `/run/netns/`), entering one from a thread, and the `ip` tool.
//!
//! `setns(2)` moves only the calling thread, and a socket belongs to the
//! namespace it was created in for its whole life. So [`Netns::run`] runs a
//! closure on a scoped thread that first enters the namespace: sockets it
//! creates live there, and the descriptors are the process's to use from
//! any thread afterwards. Children spawned from that thread inherit its
//! namespace, so `ip`, `nft` and `tcpdump` started there act in it too.
//!
//! Namespaces made by [`Netns::create`] are deleted when the value drops
//! (test runs clean up even when they fail, since unwinding drops them).
//! Their loopback is up with `127.0.0.1/32` only, and `route_localnet` is
//! on, so other `127.0.0.0/8` addresses can be routed over veth links
//! between namespaces: klab's test networks use only loopback-range
//! addresses.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::thread::LinkNameSpaceType;

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A tool failed.
    #[error("{command}: {message}")]
    Tool {
        /// The command line.
        command: String,
        /// Its error output or the spawn error.
        message: String,
    },
    /// setns failed.
    #[error("setns({path}): {source}")]
    Enter {
        /// The namespace path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A network namespace.
#[derive(Debug)]
pub struct Netns {
    name: Option<String>,
    path: PathBuf,
    owned: bool,
}

/// Runs a tool, returning its standard output.
pub fn run_tool(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Tool {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetnsError::Tool {
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Netns {
    /// Creates the named namespace `name` (`ip netns add`), loopback up
    /// with `127.0.0.1/32`, `route_localnet` on. Deleted on drop.
    ///
    /// # Errors
    /// `ip` failing (not root, or the name exists).
    pub fn create(name: &str) -> Result<Netns, NetnsError> {
        run_tool("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: Some(name.to_owned()),
            path: PathBuf::from(format!("/run/netns/{name}")),
            owned: true,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.ip(&["addr", "del", "127.0.0.1/8", "dev", "lo"])?;
        ns.ip(&["addr", "add", "127.0.0.1/32", "dev", "lo"])?;
        ns.sysctl("net.ipv4.conf.all.route_localnet", "1")?;
        ns.sysctl("net.ipv4.conf.default.route_localnet", "1")?;
        Ok(ns)
    }

    /// An existing namespace by `ip netns` name (not deleted on drop).
    ///
    /// # Errors
    /// When `/run/netns/NAME` does not exist.
    pub fn named(name: &str) -> Result<Netns, NetnsError> {
        let path = PathBuf::from(format!("/run/netns/{name}"));
        if !path.exists() {
            return Err(NetnsError::Tool {
                command: format!("netns {name}"),
                message: format!("{} does not exist (see `ip netns list`)", path.display()),
            });
        }
        Ok(Netns {
            name: Some(name.to_owned()),
            path,
            owned: false,
        })
    }

    /// A namespace by path (`/proc/PID/ns/net`), not deleted on drop.
    pub fn at(path: &Path) -> Netns {
        Netns {
            name: None,
            path: path.to_owned(),
            owned: false,
        }
    }

    /// The path `setns` and `nsenter` take.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `ip netns` name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Moves the calling thread into this namespace.
    ///
    /// # Errors
    /// The namespace cannot be opened or entered.
    pub fn enter_current_thread(&self) -> Result<(), NetnsError> {
        let err = |source| NetnsError::Enter {
            path: self.path.clone(),
            source,
        };
        let f = File::open(&self.path).map_err(err)?;
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| err(e.into()))
    }

    /// Runs `f` on a thread inside this namespace and returns its result.
    ///
    /// # Errors
    /// The namespace cannot be entered.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter_current_thread()?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs `f` on the calling thread inside this namespace, then moves
    /// the thread back to the namespace it was in: no thread handoff, so
    /// no wait for the scheduler (what a migration's downtime wants).
    ///
    /// # Errors
    /// Either namespace cannot be entered; `f` does not run if the first
    /// fails.
    pub fn run_here<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        let home_path = PathBuf::from("/proc/thread-self/ns/net");
        let home = File::open(&home_path).map_err(|source| NetnsError::Enter {
            path: home_path.clone(),
            source,
        })?;
        self.enter_current_thread()?;
        let out = f();
        rustix::thread::move_into_link_name_space(home.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| NetnsError::Enter {
            path: home_path,
            source: e.into(),
        })?;
        Ok(out)
    }

    /// `ip -n NAME ARGS` (or `nsenter --net=PATH ip ARGS` for an unnamed one).
    ///
    /// # Errors
    /// `ip` failing, with its message.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        match &self.name {
            Some(n) => {
                let mut v = vec!["-n", n.as_str()];
                v.extend_from_slice(args);
                run_tool("ip", &v)
            }
            None => {
                let net = format!("--net={}", self.path.display());
                let mut v = vec![net.as_str(), "ip"];
                v.extend_from_slice(args);
                run_tool("nsenter", &v)
            }
        }
    }

    /// Sets a sysctl inside the namespace.
    ///
    /// # Errors
    /// `sysctl` failing.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let net = format!("--net={}", self.path.display());
        let kv = format!("{key}={value}");
        run_tool("nsenter", &[&net, "sysctl", "-qw", &kv]).map(|_| ())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned
            && let Some(n) = &self.name
        {
            let _ = run_tool("ip", &["netns", "del", n]);
        }
    }
}

/// The effective capability set (`CapEff` in `/proc/self/status`).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// `CAP_NET_ADMIN`'s bit.
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`'s bit.
const CAP_SYS_ADMIN: u32 = 21;

/// True when this process may create network namespaces and use repair
/// mode: CAP_SYS_ADMIN (`ip netns add`, `setns`) and CAP_NET_ADMIN in its
/// effective set.
pub fn privileged() -> bool {
    let caps = effective_caps();
    caps & (1 << CAP_NET_ADMIN) != 0 && caps & (1 << CAP_SYS_ADMIN) != 0
}

/// True when this process has CAP_NET_ADMIN in its effective set, which
/// repair mode, nftables and `pidfd_getfd` of a root process need.
pub fn has_net_admin() -> bool {
    effective_caps() & (1 << CAP_NET_ADMIN) != 0
}

/// A namespace name unique to this process and call: `klab-<pid>-<n>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "klab-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
