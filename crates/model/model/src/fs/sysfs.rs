//! A sysfs of model objects whose files can stay open across the removal
//! of the object (seed 003, "Toward a safer sysfs"; `docs/REFERENCE.md`
//! §10).
//!
//! # Data structures
//!
//! ```text
//!   Sysfs
//!     objects: ObjId -> Object          /sys/devices/<name>/
//!        node: Arc<Revocable<Kobj>>       sysfs_dirent/kernfs_node + its object
//!        kref: usize                      the kobject's reference count (pins)
//!        device_bytes, priv_bytes         the device struct and the driver's data
//!     paths:   "/sys/devices/<name>/<attr>" -> (ObjId, attr)
//!     files:   FileId -> OpenFile { obj, attr }      open sysfs files
//!     inflight: OpId -> InFlight { file, active ref } a show()/store() running
//! ```
//!
//! # Two lifetimes ([`Lifetime`])
//!
//! * `OpenFilePins` (before 2.6.22): `open()` takes a kobject reference
//!   and a module reference (`attr->owner`); unplugging unlinks the
//!   files and drops the registration reference, but the device lives
//!   until the last open file is closed, and every `read()` still calls
//!   the driver's `show()`. A driver that frees its data at disconnect
//!   ([`DriverStyle::Careless`]) is then read after free; one that frees it
//!   in the kobject's `release()` ([`DriverStyle::Careful`]) serves stale
//!   data and keeps its memory until the close. `rmmod` fails with
//!   `EBUSY` while a file is open.
//! * `ActiveRefs` (2.6.22, Tejun Heo): `open()` pins nothing that belongs
//!   to the driver; each `read()`/`write()` takes an active reference
//!   for the duration of `show()`/`store()` (`klab_revocable`, mirroring
//!   `sysfs_get_active()`). Unplugging deactivates the node, waits for the
//!   operations in flight, then frees the device and the driver's data at
//!   once; later operations on the open file get `ENODEV`.
//!
//! # Invariants
//!
//! * `OpenFilePins`: `kref = registered + open files on the object`; the
//!   object is freed exactly when `kref` reaches 0.
//! * `ActiveRefs`: after [`Sysfs::unplug`] no new operation reaches the
//!   object; it is freed at the tick its last in-flight operation ends
//!   (or at once if none), regardless of open files.
//! * `bytes_held(now)` = sum of `device_bytes + priv_bytes` of objects not
//!   yet freed (the careless driver's data counts until disconnect).
//!
//! Every operation takes `now` (virtual ticks): the model never reads a
//! clock. The active reference is held across ticks by storing an
//! `OwnedActiveRef` in the in-flight table; one `Revocable` per object
//! covers all its attribute files (2.6.22's `sysfs_get_active_two()` took
//! the attribute's and its directory's).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use klab_revocable::{OwnedActiveRef, Revocable};

use crate::clock::Tick;

/// How open sysfs files relate to the objects they show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifetime {
    /// An open file pins the kobject (and the module) until closed.
    OpenFilePins,
    /// Operations take active references; removal drains them.
    ActiveRefs,
}

/// When a driver frees its per-device data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriverStyle {
    /// In the kobject's `release()`: correct under either lifetime.
    Careful,
    /// In `disconnect()`, as if nothing could still call it.
    Careless,
}

/// An object identifier.
pub type ObjId = u32;
/// An open file identifier.
pub type FileId = u32;
/// An in-flight operation identifier.
pub type OpId = u32;

/// Errors of sysfs operations, as the kernel's errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SysfsError {
    /// `ENOENT`: no such file (never existed, or unlinked).
    #[error("ENOENT: no such sysfs file")]
    NoEntry,
    /// `ENODEV`: the object behind an open file was removed.
    #[error("ENODEV: the device was removed")]
    NoDevice,
    /// `EBADF`: not an open file / operation.
    #[error("EBADF: no such open file")]
    BadFile,
    /// `EBUSY`: the module is in use.
    #[error("EBUSY: module in use")]
    Busy,
}

/// What the driver's `show()` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The attribute's value as read.
    pub value: String,
    /// The device was unplugged: the driver answered for a device it
    /// believes gone.
    pub stale: bool,
    /// The driver's data had been freed: a use after free.
    pub use_after_free: bool,
}

/// A kobject with its attributes: what the driver's callbacks serve.
#[derive(Debug)]
pub struct Kobj {
    name: String,
    attrs: BTreeMap<String, Mutex<String>>,
}

#[derive(Debug)]
struct Object {
    dir: String,
    node: Arc<Revocable<Kobj>>,
    kref: usize,
    open_files: usize,
    device_bytes: u64,
    priv_bytes: u64,
    unplugged_at: Option<Tick>,
    priv_freed_at: Option<Tick>,
    freed_at: Option<Tick>,
}

#[derive(Debug)]
struct OpenFile {
    obj: ObjId,
    attr: String,
}

#[derive(Debug)]
struct InFlight {
    file: FileId,
    active: Option<OwnedActiveRef<Kobj>>,
    shown: Shown,
}

/// Counters of what the sysfs served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysfsStats {
    /// Operations that reached a live object.
    pub ok: u64,
    /// Operations refused with `ENODEV`.
    pub enodev: u64,
    /// Operations served by a driver for an unplugged device.
    pub stale: u64,
    /// Of which read driver data after it was freed.
    pub use_after_free: u64,
    /// `rmmod` attempts refused with `EBUSY`.
    pub rmmod_busy: u64,
}

/// When an object's memory went, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// The device structure.
    pub device_bytes: u64,
    /// The driver's data.
    pub priv_bytes: u64,
    /// When it was unplugged.
    pub unplugged_at: Option<Tick>,
    /// When the driver's data was freed.
    pub priv_freed_at: Option<Tick>,
    /// When the device structure (the last of its memory) was freed.
    pub freed_at: Option<Tick>,
}

impl Lifecycle {
    /// Bytes the object holds at `t`.
    pub fn bytes_at(&self, t: Tick) -> u64 {
        let dev = if self.freed_at.is_some_and(|f| f <= t) {
            0
        } else {
            self.device_bytes
        };
        let pv = if self.priv_freed_at.is_some_and(|f| f <= t) {
            0
        } else {
            self.priv_bytes
        };
        dev + pv
    }

    /// Bytes x ticks the object held memory after it was unplugged (0 if
    /// never unplugged; up to `end` for memory not yet freed).
    pub fn byte_ticks_after_unplug(&self, end: Tick) -> u64 {
        let Some(u) = self.unplugged_at else {
            return 0;
        };
        let until = |f: Option<Tick>| f.unwrap_or(end).0.max(u.0) - u.0;
        self.device_bytes * until(self.freed_at) + self.priv_bytes * until(self.priv_freed_at)
    }
}

/// The model's sysfs.
#[derive(Debug)]
pub struct Sysfs {
    lifetime: Lifetime,
    style: DriverStyle,
    objects: BTreeMap<ObjId, Object>,
    paths: BTreeMap<String, (ObjId, String)>,
    files: BTreeMap<FileId, OpenFile>,
    inflight: BTreeMap<OpId, InFlight>,
    module_refs: usize,
    next_id: u32,
    stats: SysfsStats,
}

impl Sysfs {
    /// An empty sysfs with a lifetime policy and a driver style.
    pub fn new(lifetime: Lifetime, style: DriverStyle) -> Self {
        Sysfs {
            lifetime,
            style,
            objects: BTreeMap::new(),
            paths: BTreeMap::new(),
            files: BTreeMap::new(),
            inflight: BTreeMap::new(),
            module_refs: 0,
            next_id: 0,
            stats: SysfsStats::default(),
        }
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Counters so far.
    pub fn stats(&self) -> SysfsStats {
        self.stats
    }

    /// Registers a device `/sys/devices/<name>` with attribute files.
    pub fn add_device(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        device_bytes: u64,
        priv_bytes: u64,
    ) -> ObjId {
        let id = self.id();
        let dir = format!("/sys/devices/{name}");
        let kobj = Kobj {
            name: name.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Mutex::new((*v).to_owned())))
                .collect(),
        };
        for (a, _) in attrs {
            self.paths
                .insert(format!("{dir}/{a}"), (id, (*a).to_owned()));
        }
        self.objects.insert(
            id,
            Object {
                dir,
                node: Arc::new(Revocable::new(kobj)),
                kref: 1,
                open_files: 0,
                device_bytes,
                priv_bytes,
                unplugged_at: None,
                priv_freed_at: None,
                freed_at: None,
            },
        );
        id
    }

    /// The paths of the files present now, sorted.
    pub fn ls(&self) -> Vec<String> {
        self.paths.keys().cloned().collect()
    }

    /// `open()` of an attribute file.
    pub fn open(&mut self, path: &str) -> Result<FileId, SysfsError> {
        let (obj, attr) = self.paths.get(path).cloned().ok_or(SysfsError::NoEntry)?;
        let o = self.objects.get_mut(&obj).ok_or(SysfsError::NoEntry)?;
        o.open_files += 1;
        if self.lifetime == Lifetime::OpenFilePins {
            // sysfs_open_file(): kobject_get() and try_module_get(owner).
            o.kref += 1;
            self.module_refs += 1;
        }
        let id = self.id();
        self.files.insert(id, OpenFile { obj, attr });
        Ok(id)
    }

    /// Starts a `read()`: the driver's `show()` runs until
    /// [`Sysfs::end_op`]. Under `ActiveRefs` this takes the active
    /// reference, or fails with `ENODEV`.
    pub fn begin_read(&mut self, file: FileId) -> Result<OpId, SysfsError> {
        let (obj, attr) = {
            let f = self.files.get(&file).ok_or(SysfsError::BadFile)?;
            (f.obj, f.attr.clone())
        };
        let o = self.objects.get(&obj).ok_or(SysfsError::BadFile)?;
        let (active, shown) = match self.lifetime {
            Lifetime::ActiveRefs => match Revocable::try_get_owned(&o.node) {
                Ok(a) => {
                    let value = a
                        .attrs
                        .get(&attr)
                        .map(|v| lock(v).clone())
                        .unwrap_or_default();
                    let shown = Shown {
                        value,
                        stale: false,
                        use_after_free: false,
                    };
                    (Some(a), shown)
                }
                Err(_) => {
                    self.stats.enodev += 1;
                    return Err(SysfsError::NoDevice);
                }
            },
            Lifetime::OpenFilePins => {
                // The kobject is pinned by this file; the driver is called
                // whatever it thinks of the device.
                let kobj = o.node.try_get().map_err(|_| SysfsError::NoDevice)?;
                let value = kobj
                    .attrs
                    .get(&attr)
                    .map(|v| lock(v).clone())
                    .unwrap_or_default();
                let shown = Shown {
                    value,
                    stale: o.unplugged_at.is_some(),
                    use_after_free: o.priv_freed_at.is_some(),
                };
                (None, shown)
            }
        };
        if shown.stale {
            self.stats.stale += 1;
        } else {
            self.stats.ok += 1;
        }
        if shown.use_after_free {
            self.stats.use_after_free += 1;
        }
        let id = self.id();
        self.inflight.insert(
            id,
            InFlight {
                file,
                active,
                shown,
            },
        );
        Ok(id)
    }

    /// Starts a `write()`: the driver's `store()` sets the attribute.
    pub fn begin_write(&mut self, file: FileId, value: &str) -> Result<OpId, SysfsError> {
        let op = self.begin_read(file)?;
        let Some(f) = self.files.get(&file) else {
            return Ok(op);
        };
        if let Some(Some(a)) = self.inflight.get(&op).map(|i| &i.active) {
            if let Some(v) = a.attrs.get(&f.attr) {
                *lock(v) = value.to_owned();
            }
        } else if let Some(o) = self.objects.get(&f.obj)
            && let Ok(k) = o.node.try_get()
            && let Some(v) = k.attrs.get(&f.attr)
        {
            *lock(v) = value.to_owned();
        }
        Ok(op)
    }

    /// Ends an operation at `now`: its active reference is put, and a
    /// removal waiting for it completes.
    pub fn end_op(&mut self, op: OpId, now: Tick) -> Result<Shown, SysfsError> {
        let inf = self.inflight.remove(&op).ok_or(SysfsError::BadFile)?;
        let _ = inf.file;
        drop(inf.active);
        self.reap(now);
        Ok(inf.shown)
    }

    /// A whole `read()` at `now`.
    pub fn read(&mut self, file: FileId, now: Tick) -> Result<Shown, SysfsError> {
        let op = self.begin_read(file)?;
        self.end_op(op, now)
    }

    /// `close()` of an open file at `now`.
    pub fn close(&mut self, file: FileId, now: Tick) -> Result<(), SysfsError> {
        let f = self.files.remove(&file).ok_or(SysfsError::BadFile)?;
        if let Some(o) = self.objects.get_mut(&f.obj) {
            o.open_files -= 1;
            if self.lifetime == Lifetime::OpenFilePins {
                self.module_refs -= 1;
                Self::kobject_put(o, self.style, now);
            }
        }
        Ok(())
    }

    /// `kobject_put()`: at zero the release callback frees the device and
    /// (careful driver) its data.
    fn kobject_put(o: &mut Object, style: DriverStyle, now: Tick) {
        o.kref -= 1;
        if o.kref == 0 {
            o.node.remove();
            o.freed_at = Some(now);
            if style == DriverStyle::Careful || o.priv_freed_at.is_none() {
                o.priv_freed_at = Some(now);
            }
        }
    }

    /// The device goes away at `now` (`device_del()` and the driver's
    /// `disconnect()`): its files disappear from the tree. Returns true when
    /// the removal completed now, false when it waits for operations in
    /// flight (ActiveRefs).
    pub fn unplug(&mut self, obj: ObjId, now: Tick) -> Result<bool, SysfsError> {
        let o = self.objects.get_mut(&obj).ok_or(SysfsError::NoEntry)?;
        if o.unplugged_at.is_some() {
            return Err(SysfsError::NoEntry);
        }
        o.unplugged_at = Some(now);
        let dir = format!("{}/", o.dir);
        self.paths.retain(|p, _| !p.starts_with(&dir));
        let o = self.objects.get_mut(&obj).ok_or(SysfsError::NoEntry)?;
        match self.lifetime {
            Lifetime::ActiveRefs => {
                o.node.deactivate();
                self.reap(now);
                Ok(self.objects.get(&obj).is_some_and(|o| o.freed_at.is_some()))
            }
            Lifetime::OpenFilePins => {
                if self.style == DriverStyle::Careless {
                    o.priv_freed_at = Some(now);
                }
                Self::kobject_put(o, self.style, now);
                Ok(true)
            }
        }
    }

    /// Frees every deactivated object whose operations have drained.
    fn reap(&mut self, now: Tick) {
        if self.lifetime != Lifetime::ActiveRefs {
            return;
        }
        for o in self.objects.values_mut() {
            if o.freed_at.is_none() && o.unplugged_at.is_some() && o.node.reap() {
                o.freed_at = Some(now);
                o.priv_freed_at = Some(now);
            }
        }
    }

    /// `rmmod` of the driver: `EBUSY` while an open file holds a module
    /// reference (OpenFilePins).
    pub fn rmmod(&mut self) -> Result<(), SysfsError> {
        if self.module_refs > 0 {
            self.stats.rmmod_busy += 1;
            Err(SysfsError::Busy)
        } else {
            Ok(())
        }
    }

    /// Driver memory (device structs and driver data) not yet freed at
    /// `now`.
    pub fn bytes_held(&self, now: Tick) -> u64 {
        self.lifecycles().values().map(|l| l.bytes_at(now)).sum()
    }

    /// Each object's memory lifecycle, by id.
    pub fn lifecycles(&self) -> BTreeMap<ObjId, Lifecycle> {
        self.objects
            .iter()
            .map(|(id, o)| {
                (
                    *id,
                    Lifecycle {
                        device_bytes: o.device_bytes,
                        priv_bytes: o.priv_bytes,
                        unplugged_at: o.unplugged_at,
                        priv_freed_at: o.priv_freed_at,
                        freed_at: o.freed_at,
                    },
                )
            })
            .collect()
    }

    /// The object's name (for reports).
    pub fn name(&self, obj: ObjId) -> Option<String> {
        let o = self.objects.get(&obj)?;
        Some(o.dir.rsplit('/').next().unwrap_or_default().to_owned())
    }

    /// Open files now.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// Checks the invariants in the module header.
    pub fn assert_invariants(&self) {
        for (id, o) in &self.objects {
            match self.lifetime {
                Lifetime::OpenFilePins => {
                    let registered = usize::from(o.unplugged_at.is_none());
                    assert_eq!(o.kref, registered + o.open_files, "object {id}: kref");
                    assert_eq!(
                        o.freed_at.is_some(),
                        o.kref == 0,
                        "object {id}: freed iff kref 0"
                    );
                }
                Lifetime::ActiveRefs => {
                    if o.unplugged_at.is_some() && o.freed_at.is_none() {
                        assert!(o.node.active() > 0, "object {id}: drained but not freed");
                    }
                }
            }
            if o.freed_at.is_some() {
                assert!(
                    o.priv_freed_at.is_some(),
                    "object {id}: device freed before its data"
                );
            }
            let _ = &o.node.try_get().map(|k| k.name.len());
        }
        let open: usize = self.objects.values().map(|o| o.open_files).sum();
        assert_eq!(open, self.files.len(), "open file counts");
    }
}

/// An attribute's value; the model is single-threaded, so the lock is
/// never contended (it makes the object `Sync`, as `Revocable` wants).
fn lock(v: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    v.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTRS: &[(&str, &str)] = &[("resolution", "800"), ("buttons", "3")];

    fn mouse(l: Lifetime, s: DriverStyle) -> (Sysfs, ObjId, FileId) {
        let mut fs = Sysfs::new(l, s);
        let m = fs.add_device("usb1/1-1", ATTRS, 512, 2048);
        let f = fs.open("/sys/devices/usb1/1-1/resolution").unwrap();
        (fs, m, f)
    }

    #[test]
    fn with_active_refs_reads_after_unplug_are_enodev_and_memory_goes_at_once() {
        let (mut fs, m, f) = mouse(Lifetime::ActiveRefs, DriverStyle::Careless);
        assert_eq!(fs.read(f, Tick(1)).unwrap().value, "800");
        assert_eq!(fs.bytes_held(Tick(1)), 2560);
        assert_eq!(
            fs.unplug(m, Tick(10)),
            Ok(true),
            "nothing in flight: done at once"
        );
        assert_eq!(fs.bytes_held(Tick(10)), 0);
        assert_eq!(fs.read(f, Tick(11)), Err(SysfsError::NoDevice));
        assert_eq!(
            fs.open("/sys/devices/usb1/1-1/resolution"),
            Err(SysfsError::NoEntry)
        );
        assert_eq!(fs.rmmod(), Ok(()), "an open file pins no module");
        fs.close(f, Tick(500)).unwrap();
        let s = fs.stats();
        assert_eq!((s.ok, s.enodev, s.stale, s.use_after_free), (1, 1, 0, 0));
        fs.assert_invariants();
    }

    #[test]
    fn removal_waits_for_the_show_in_flight() {
        let (mut fs, m, f) = mouse(Lifetime::ActiveRefs, DriverStyle::Careful);
        let op = fs.begin_read(f).unwrap();
        assert_eq!(fs.unplug(m, Tick(22)), Ok(false), "waits for the show()");
        assert_eq!(fs.bytes_held(Tick(22)), 2560);
        fs.assert_invariants();
        let shown = fs.end_op(op, Tick(25)).unwrap();
        assert_eq!(shown.value, "800");
        assert!(!shown.stale && !shown.use_after_free);
        assert_eq!(fs.lifecycles()[&m].freed_at, Some(Tick(25)));
        assert_eq!(fs.bytes_held(Tick(25)), 0);
        fs.assert_invariants();
    }

    #[test]
    fn with_open_file_pins_the_device_lives_until_close() {
        let (mut fs, m, f) = mouse(Lifetime::OpenFilePins, DriverStyle::Careful);
        assert_eq!(fs.unplug(m, Tick(10)), Ok(true));
        let shown = fs.read(f, Tick(20)).unwrap();
        assert_eq!(
            shown,
            Shown {
                value: "800".to_owned(),
                stale: true,
                use_after_free: false
            }
        );
        assert_eq!(fs.bytes_held(Tick(20)), 2560, "pinned by the open file");
        assert_eq!(fs.rmmod(), Err(SysfsError::Busy));
        fs.assert_invariants();
        fs.close(f, Tick(1000)).unwrap();
        assert_eq!(fs.lifecycles()[&m].freed_at, Some(Tick(1000)));
        assert_eq!(fs.bytes_held(Tick(1000)), 0);
        assert_eq!(fs.rmmod(), Ok(()));
        fs.assert_invariants();
    }

    #[test]
    fn a_careless_driver_is_read_after_free() {
        let (mut fs, m, f) = mouse(Lifetime::OpenFilePins, DriverStyle::Careless);
        fs.unplug(m, Tick(10)).unwrap();
        assert_eq!(
            fs.bytes_held(Tick(10)),
            512,
            "driver data freed at disconnect"
        );
        let shown = fs.read(f, Tick(20)).unwrap();
        assert!(shown.stale && shown.use_after_free);
        assert_eq!(fs.stats().use_after_free, 1);
        fs.close(f, Tick(30)).unwrap();
        assert_eq!(fs.bytes_held(Tick(30)), 0);
        // The device struct (512 B) was held 20 ticks after unplug.
        assert_eq!(
            fs.lifecycles()[&m].byte_ticks_after_unplug(Tick(99)),
            512 * 20
        );
        fs.assert_invariants();
    }

    #[test]
    fn writes_go_through_active_references_too() {
        let (mut fs, m, f) = mouse(Lifetime::ActiveRefs, DriverStyle::Careful);
        let op = fs.begin_write(f, "1600").unwrap();
        fs.end_op(op, Tick(2)).unwrap();
        assert_eq!(fs.read(f, Tick(3)).unwrap().value, "1600");
        fs.unplug(m, Tick(4)).unwrap();
        assert_eq!(fs.begin_write(f, "400"), Err(SysfsError::NoDevice));
    }
}
