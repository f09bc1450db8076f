//! `klab tcp-repair`: dump, restore, show, migrate, unlock. Thin: parse,
//! call klab-tcp-repair, print.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use klab_lab::output;
use klab_tcp_repair::netns::{Netns, has_net_admin};
use klab_tcp_repair::take::{self, Stopped};
use klab_tcp_repair::{Image, NetLock, RestoreOptions, netlock};

use crate::flags::{
    DumpArgs, MigrateArgs, RestoreArgs, ShowArgs, TcpRepairArgs, TcpRepairCommand, UnlockArgs,
};
use crate::messages;

pub(crate) fn run(args: &TcpRepairArgs) -> anyhow::Result<u8> {
    match &args.command {
        TcpRepairCommand::Show(a) => show(a),
        cmd => {
            require_net_admin()?;
            on_signal_unlock()?;
            match cmd {
                TcpRepairCommand::Dump(a) => dump(a),
                TcpRepairCommand::Restore(a) => restore(a),
                TcpRepairCommand::Migrate(a) => migrate(a),
                TcpRepairCommand::Unlock(a) => unlock(a),
                TcpRepairCommand::Show(_) => unreachable!("handled above"),
            }
        }
    }
}

fn require_net_admin() -> anyhow::Result<()> {
    if !has_net_admin() {
        bail!(
            "tcp-repair needs CAP_NET_ADMIN (run as root): TCP_REPAIR, the nftables lock and \
             pidfd_getfd all require it"
        );
    }
    Ok(())
}

/// SIGINT, SIGTERM or SIGHUP mid-command: release every network lock this
/// process holds and continue any process it stopped, then exit 130.
fn on_signal_unlock() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let n = netlock::release_all();
            take::continue_all();
            messages::error(format_args!(
                "interrupted by signal {sig}: released {n} network lock(s)"
            ));
            std::process::exit(130);
        }
    });
    Ok(())
}

/// Reads an image, its header checked before the rest is read.
fn read_image(path: &Path) -> anyhow::Result<Image> {
    let file = File::open(path).with_context(|| format!("{}", path.display()))?;
    Image::read_from(file).with_context(|| format!("{}", path.display()))
}

/// Writes an image through klab's atomic writer (a temporary file, synced
/// and renamed; created with the mode the umask gives).
fn write_image(path: &Path, img: &Image) -> anyhow::Result<()> {
    let bytes = img.to_bytes().context("image")?;
    output::write_atomic_bytes(path, &bytes)?;
    Ok(())
}

/// A path to a namespace that stays valid after its last process exits:
/// the magic link of a descriptor we hold open.
struct HeldNetns {
    file: File,
}

impl HeldNetns {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("{}", path.display()))?;
        Ok(HeldNetns { file })
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }
}

/// What a dump leaves: our copy of the socket (in repair mode), the image,
/// the live lock and the tuples it covers.
struct Dumped {
    sock: OwnedFd,
    img: Image,
    lock: NetLock,
    tuples: Vec<(SocketAddr, SocketAddr)>,
}

/// Takes, locks and dumps.
fn take_and_dump(pid: i32, fd: i32, source_ns: &Path) -> anyhow::Result<Dumped> {
    let sock = take::take_socket(pid, fd)?;
    let tuple =
        klab_tcp_repair::tuple(sock.as_fd()).with_context(|| format!("pid {pid} fd {fd}"))?;
    let lock = NetLock::lock(Some(source_ns), &[tuple]).context("network lock")?;
    let stopped = Stopped::stop(pid, Duration::from_secs(2))?;
    let conn =
        klab_tcp_repair::dump(sock.as_fd()).with_context(|| format!("dump pid {pid} fd {fd}"))?;
    drop(stopped);
    Ok(Dumped {
        sock,
        img: Image { conns: vec![conn] },
        lock,
        tuples: vec![tuple],
    })
}

fn dump(a: &DumpArgs) -> anyhow::Result<u8> {
    let ns = HeldNetns::open(&take::netns_of(a.pid))?;
    let Dumped {
        sock,
        img,
        lock,
        tuples,
    } = take_and_dump(a.pid, a.fd, &ns.path())?;
    write_image(&a.output, &img)?;
    // Our copy goes; the owner's copy stays in repair mode.
    drop(sock);
    let kept = lock.keep(&tuples).context("keeping the network lock")?;
    let c = &img.conns[0];
    messages::out(&format!(
        "dumped {} -> {} ({}, {} bytes queued) to {}\n\
         the socket stays in repair mode in pid {}: closing it sends nothing\n\
         its packets stay dropped (nft table inet {kept}) until `klab tcp-repair restore` \
         or `klab tcp-repair unlock`\n",
        c.local,
        c.remote,
        c.state,
        c.recv_queue.len() + c.send_queue.len(),
        a.output.display(),
        a.pid
    ));
    Ok(0)
}

/// Resolves CMD before anything irreversible happens, so a typo does not
/// cost the connection.
fn resolve(cmd: &[String]) -> anyhow::Result<PathBuf> {
    let Some(prog) = cmd.first() else {
        bail!("no command given after --");
    };
    let candidates: Vec<PathBuf> = if prog.contains('/') {
        vec![PathBuf::from(prog)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(prog)).collect())
            .unwrap_or_default()
    };
    use std::os::unix::fs::PermissionsExt as _;
    candidates
        .into_iter()
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .with_context(|| format!("{prog}: command not found"))
}

/// Restores the single connection of `img` in the current thread's
/// namespace, removes its locks (kept ones in `lock_namespaces`, then the
/// live `lock`), leaves repair mode and execs CMD with the socket as fd 3.
fn restore_and_exec(
    img: &Image,
    opts: RestoreOptions,
    lock_namespaces: &[PathBuf],
    lock: Option<NetLock>,
    cmd: &[String],
) -> anyhow::Result<u8> {
    let [c] = img.conns.as_slice() else {
        bail!(
            "the image holds {} connections; restore passes one socket (LISTEN_FDS=1)",
            img.conns.len()
        );
    };
    let prog = resolve(cmd)?;
    let restored = klab_tcp_repair::restore(c, opts)
        .with_context(|| format!("restore {} -> {}", c.local, c.remote))?;
    let tuples = [(c.local, c.remote)];
    for ns in lock_namespaces {
        netlock::release_kept(Some(ns), &tuples).context("removing the network lock")?;
    }
    if let Some(l) = lock {
        l.unlock().context("removing the network lock")?;
    }
    let fd = restored.finish().context("leaving repair mode")?;
    let mut command = Command::new(prog);
    command.arg0(&cmd[0]).args(&cmd[1..]);
    let err = klab_sys::listen_fd::exec_with_listen_fd(&mut command, fd);
    Err(err).with_context(|| format!("exec {}", cmd[0]))
}

use std::os::unix::process::CommandExt as _;

fn enter(netns: Option<&str>) -> anyhow::Result<()> {
    if let Some(name) = netns {
        Netns::named(name)?.enter_current_thread()?;
    }
    Ok(())
}

fn restore(a: &RestoreArgs) -> anyhow::Result<u8> {
    // Parsed and checked before any socket is touched.
    let img = read_image(&a.image)?;
    let here = HeldNetns::open(Path::new("/proc/thread-self/ns/net"))?;
    enter(a.netns.as_deref())?;
    let there = HeldNetns::open(Path::new("/proc/thread-self/ns/net"))?;
    restore_and_exec(
        &img,
        RestoreOptions {
            freebind: a.freebind,
        },
        &[there.path(), here.path()],
        None,
        &a.cmd,
    )
}

fn migrate(a: &MigrateArgs) -> anyhow::Result<u8> {
    // A command that cannot run would cost the connection: check it first.
    resolve(&a.cmd)?;
    let source = HeldNetns::open(&take::netns_of(a.pid))?;
    let Dumped {
        sock, img, lock, ..
    } = take_and_dump(a.pid, a.fd, &source.path())?;
    drop(sock);
    if !a.keep_owner {
        take::kill_and_wait(a.pid, Duration::from_secs(5))?;
    }
    enter(a.netns.as_deref())?;
    restore_and_exec(&img, RestoreOptions::default(), &[], Some(lock), &a.cmd)
}

fn unlock(a: &UnlockArgs) -> anyhow::Result<u8> {
    let ns = a.netns.as_deref().map(Netns::named).transpose()?;
    let (deleted, left) = netlock::clear_stale(ns.as_ref().map(Netns::path), a.all)?;
    let mut out = String::new();
    for t in &deleted {
        out.push_str(&format!("removed nft table inet {t}\n"));
    }
    for t in &left {
        out.push_str(&format!(
            "left nft table inet {t} (its klab process is running; --all removes it)\n"
        ));
    }
    if deleted.is_empty() && left.is_empty() {
        out.push_str("no klab network lock here\n");
    }
    messages::out(&out);
    Ok(0)
}

fn hex_preview(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
    let more = if b.len() > 32 { " ..." } else { "" };
    format!("{}{more}", shown.join(" "))
}

fn show(a: &ShowArgs) -> anyhow::Result<u8> {
    let img = read_image(&a.image)?;
    let mut out = format!(
        "{}: klab tcp-repair image, format {}, {} connection(s)\n",
        a.image.display(),
        klab_tcp_repair::image::VERSION,
        img.conns.len()
    );
    for (i, c) in img.conns.iter().enumerate() {
        let o = &c.options;
        let opts = [
            o.sack.then_some("sack".to_owned()),
            o.timestamps.then_some("timestamps".to_owned()),
            o.wscale.map(|(s, r)| format!("wscale snd {s} rcv {r}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        out.push_str(&format!(
            "connection {i}: {} -> {}\n  state       {}\n  options     {}\n  mss clamp   {}\n",
            c.local,
            c.remote,
            c.state,
            if opts.is_empty() { "none".into() } else { opts },
            c.mss_clamp
        ));
        if o.timestamps {
            out.push_str(&format!("  timestamp   {}\n", c.timestamp));
        }
        match &c.window {
            Some(w) => out.push_str(&format!(
                "  window      snd_wl1 {} snd_wnd {} max_window {} rcv_wnd {} rcv_wup {}\n",
                w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup
            )),
            None => out.push_str("  window      not saved (kernel before 4.8)\n"),
        }
        out.push_str(&format!(
            "  recv queue  {} bytes, rcv_nxt {}: {}\n  send queue  {} bytes ({} sent, {} unsent), write_seq {}: {}\n",
            c.recv_queue.len(),
            c.recv_seq,
            hex_preview(&c.recv_queue),
            c.send_queue.len(),
            c.sent_len(),
            c.unsent,
            c.send_seq,
            hex_preview(&c.send_queue)
        ));
    }
    messages::out(&out);
    Ok(0)
}
