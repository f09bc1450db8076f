//! Active references: objects whose users may outlive them, removed
//! cleanly anyway.
//!
//! # The problem (seed 003, "Toward a safer sysfs"; `docs/REFERENCE.md` §10)
//!
//! A process opens a sysfs file of a USB mouse and keeps it open; the mouse
//! is unplugged. Before 2.6.22 the open file held a reference on the
//! device's kobject, so the device structure (and whatever the driver
//! hung off it) lived until the file was closed, and every operation on the
//! file still called into a driver that believed the device gone. Tejun
//! Heo's change separated the two lifetimes: an open file pins nothing; an
//! *operation* takes an **active reference** for its duration, and removal
//! waits for the operations in flight, refuses new ones with `-ENODEV`,
//! and then lets the driver free everything at once.
//!
//! # Data structures
//!
//! ```text
//!   Revocable<T>
//!   +-------------------------+
//!   | active: AtomicI32       |  kn->active (sysfs_dirent.s_active)
//!   | slot:   RwLock<Option<Arc<T>>> | the object, until removal completes
//!   | waitq:  Mutex + Condvar |  root->deactivate_waitq
//!   +-------------------------+
//!           ^                 ^
//!   ActiveRef (borrowed):  one count in `active` + a read guard on `slot`
//!   OwnedActiveRef:        one count in `active` + an Arc<T> clone
//!                          (+ an Arc<Revocable<T>>); dropped together
//! ```
//!
//! # Invariants (`BIAS` = [`DEACTIVATED_BIAS`] = `i32::MIN + 1`)
//!
//! * live:        `active >= 0`, `active` = active references held
//! * deactivated: `active < 0`, `active - BIAS` = references still held;
//!   no new one can be taken
//! * drained:     `active == BIAS`; from here the object is dropped by the
//!   first remover to look (`slot` becomes `None`) and stays gone
//! * `slot.is_some()` whenever `active != BIAS` (a reference never finds
//!   the slot empty), and the object's `Arc` has `1 + owned references`
//!   strong counts (at most `1 + active`), so taking it out of the slot
//!   after draining frees it
//!
//! # Rules (mirrors fs/kernfs/dir.c; fs/sysfs/dir.c of 2.6.23)
//!
//! * [`Revocable::try_get`] = `kernfs_get_active()`:
//!   `atomic_inc_unless_negative(&kn->active)`; on failure the caller
//!   answers `-ENODEV` ([`Gone`]). In 2.6.22 this was
//!   `down_read_trylock(&sd->s_active)` on an rwsem, which the page
//!   describes; 2.6.23 made it the counter with a bias used here.
//! * dropping a reference = `kernfs_put_active()`: `v =
//!   atomic_dec_return(&kn->active)`; if `v == BIAS` this was the last
//!   user after deactivation: wake the removers.
//! * [`Revocable::deactivate`] = the first pass of `__kernfs_remove()`:
//!   `atomic_add(KN_DEACTIVATED_BIAS, &kn->active)` once (only if still
//!   active). `BIAS` is `INT_MIN + 1`, not `INT_MIN`, so that negating it
//!   cannot overflow; sysfs used `SD_DEACTIVATED_BIAS = INT_MIN`.
//! * [`Revocable::drain`] = `kernfs_drain()`: `wait_event(deactivate_waitq,
//!   active == BIAS)`. Several removers may drain at once; all return
//!   after draining.
//! * [`Revocable::remove`] = deactivate + drain + free ("the kobject (and
//!   its containing data structure) can be safely deleted").
//! * [`ActiveRef::remove_self`] = `kernfs_remove_self()`: an operation that
//!   removes its own object would wait for itself; it first drops its own
//!   active reference (`kernfs_break_active_protection()`), then removes.
//!   Of several concurrent self-removers exactly one returns `true`.
//!
//! # Ordering and locking
//!
//! `active` is the only thing the fast path touches besides the slot's
//! read lock (and, for owned references, the `Arc` count). The slot lock
//! is never contended by
//! removal on that path: getters reach it only while `active >= 0` or
//! while counted, and the remover takes its write lock only after
//! draining, when no getter can be inside. Increments are `Acquire`,
//! decrements `AcqRel` (the remover's drop of the object happens after
//! every user's last access), the bias add is `AcqRel`. The wait queue
//! mutex is taken by a putter only for the last put after deactivation,
//! so wakeups cannot be lost (the remover checks `active` under it).
#![forbid(unsafe_code)]

mod primitive;

use std::fmt;
use std::ops::Deref;

use primitive::{Arc, AtomicI32, Condvar, Mutex, Ordering, RwLock, RwLockReadGuard};

/// `KN_DEACTIVATED_BIAS`: added to `active` when removal begins.
pub const DEACTIVATED_BIAS: i32 = i32::MIN + 1;

/// `ENODEV`, the errno sysfs returns for an operation on a removed object.
pub const ENODEV: i32 = 19;

/// The object was removed (or its removal has begun): the kernel's
/// `-ENODEV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no such device (ENODEV): the object has been removed")]
pub struct Gone;

impl Gone {
    /// The errno: [`ENODEV`].
    pub fn errno(self) -> i32 {
        ENODEV
    }
}

impl From<Gone> for std::io::Error {
    fn from(_: Gone) -> std::io::Error {
        std::io::Error::from_raw_os_error(ENODEV)
    }
}

/// Where an object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// References may be taken; `active` are held.
    Live {
        /// Active references held.
        active: u32,
    },
    /// Removal has begun; `active` references are still held.
    Draining {
        /// Active references still held.
        active: u32,
    },
    /// No reference is held and none can be taken; the object is still
    /// allocated until a remover frees it.
    Drained,
    /// The object has been dropped.
    Gone,
}

/// An object behind active references.
pub struct Revocable<T> {
    /// A: `kn->active`; see the invariants in the crate header.
    active: AtomicI32,
    /// The object; `None` once a remover has freed it. Written only after
    /// draining.
    slot: RwLock<Option<Arc<T>>>,
    /// `deactivate_waitq`: removers sleep here until `active == BIAS`.
    waitq: Mutex<()>,
    drained: Condvar,
}

impl<T> Revocable<T> {
    /// A live object with no reference held.
    pub fn new(obj: T) -> Self {
        Revocable {
            active: AtomicI32::new(0),
            slot: RwLock::new(Some(Arc::new(obj))),
            waitq: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    /// `kernfs_get_active()`: an active reference, unless removal has begun.
    ///
    /// # Panics
    /// If `i32::MAX - 1` references are already held (the counter would
    /// overflow into the bias).
    #[inline]
    pub fn try_get(&self) -> Result<ActiveRef<'_, T>, Gone> {
        self.inc_active()?;
        // Counted: the remover cannot empty the slot before we put.
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        debug_assert!(
            slot.is_some(),
            "slot empty while an active reference is counted"
        );
        Ok(ActiveRef {
            owner: self,
            slot: Some(slot),
        })
    }

    /// [`Revocable::try_get`] for a shared object, giving a reference that
    /// owns its handle (it can be stored or sent to another thread).
    #[inline]
    pub fn try_get_owned(this: &Arc<Self>) -> Result<OwnedActiveRef<T>, Gone> {
        let obj = this.get_active()?;
        Ok(OwnedActiveRef {
            owner: Arc::clone(this),
            obj: Some(obj),
        })
    }

    /// An active reference and a clone of the object's `Arc`.
    #[inline]
    fn get_active(&self) -> Result<Arc<T>, Gone> {
        self.inc_active()?;
        // Counted: the remover cannot empty the slot before we put.
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(obj) => Ok(Arc::clone(obj)),
            None => unreachable!("slot empty while an active reference is counted"),
        }
    }

    /// `atomic_inc_unless_negative(&kn->active)`.
    #[inline]
    fn inc_active(&self) -> Result<(), Gone> {
        let mut v = self.active.load(Ordering::Relaxed);
        loop {
            if v < 0 {
                return Err(Gone);
            }
            assert!(v < i32::MAX - 1, "active reference count overflow");
            match self
                .active
                .compare_exchange_weak(v, v + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => v = now,
            }
        }
    }

    /// `kernfs_put_active()`.
    #[inline]
    fn put_active(&self) {
        let v = self.active.fetch_sub(1, Ordering::AcqRel) - 1;
        if v == DEACTIVATED_BIAS {
            self.wake_removers();
        }
    }

    #[cold]
    fn wake_removers(&self) {
        let _g = self.waitq.lock().unwrap_or_else(|e| e.into_inner());
        self.drained.notify_all();
    }

    /// Begins removal: from now on [`Revocable::try_get`] fails. Returns
    /// true if this call began it (the bias is added once).
    pub fn deactivate(&self) -> bool {
        let mut v = self.active.load(Ordering::Relaxed);
        loop {
            if v < 0 {
                return false;
            }
            match self.active.compare_exchange_weak(
                v,
                v + DEACTIVATED_BIAS,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
    }

    /// True once removal has begun and every active reference is gone.
    pub fn is_drained(&self) -> bool {
        self.active.load(Ordering::Acquire) == DEACTIVATED_BIAS
    }

    /// `kernfs_drain()`: deactivates if needed, then waits until no
    /// active reference is held.
    pub fn drain(&self) {
        self.deactivate();
        let mut g = self.waitq.lock().unwrap_or_else(|e| e.into_inner());
        while self.active.load(Ordering::Acquire) != DEACTIVATED_BIAS {
            g = self.drained.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Frees the object if removal has drained and nobody freed it yet;
    /// true if this call did. Never blocks for long: after draining no
    /// reader is inside the slot.
    pub fn reap(&self) -> bool {
        if !self.is_drained() {
            return false;
        }
        let obj = self.slot.write().unwrap_or_else(|e| e.into_inner()).take();
        match obj {
            Some(obj) => {
                debug_assert_eq!(Arc::strong_count(&obj), 1, "a reference outlived draining");
                drop(obj);
                true
            }
            None => false,
        }
    }

    /// Removes the object: no new references, wait for the ones held, then
    /// free it. Returns true if this call freed it (false for a second,
    /// concurrent or later remover, which still returns only after
    /// draining).
    pub fn remove(&self) -> bool {
        self.drain();
        self.reap()
    }

    /// The object's state.
    pub fn state(&self) -> State {
        let v = self.active.load(Ordering::Acquire);
        if v >= 0 {
            State::Live {
                active: v.unsigned_abs(),
            }
        } else if v != DEACTIVATED_BIAS {
            State::Draining {
                active: (v - DEACTIVATED_BIAS).unsigned_abs(),
            }
        } else if self
            .slot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            State::Drained
        } else {
            State::Gone
        }
    }

    /// Active references held now.
    pub fn active(&self) -> u32 {
        match self.state() {
            State::Live { active } | State::Draining { active } => active,
            State::Drained | State::Gone => 0,
        }
    }

    /// Checks the invariants in the crate header.
    ///
    /// # Panics
    /// When one does not hold (call it when no other thread is changing
    /// the object).
    pub fn assert_invariants(&self) {
        let v = self.active.load(Ordering::Acquire);
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        if v != DEACTIVATED_BIAS {
            assert!(slot.is_some(), "object freed while active = {v}");
        }
        if let Some(obj) = slot.as_ref() {
            let held = if v >= 0 { v } else { v - DEACTIVATED_BIAS };
            assert!(
                Arc::strong_count(obj) <= 1 + usize::try_from(held).expect("held >= 0"),
                "Arc count <= 1 + active references"
            );
        }
    }
}

impl<T> fmt::Debug for Revocable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocable")
            .field("state", &self.state())
            .finish()
    }
}

/// An active reference: the object cannot be freed while it is held.
/// Hold it for one operation (a `show()` or `store()`), not for the life
/// of an open file.
pub struct ActiveRef<'a, T> {
    owner: &'a Revocable<T>,
    /// `Some` until dropped: the read guard is released before the count,
    /// so a remover that sees the count drained finds the slot free.
    slot: Option<RwLockReadGuard<'a, Option<Arc<T>>>>,
}

impl<T> ActiveRef<'_, T> {
    /// `kernfs_remove_self()`: removes the object from inside an operation
    /// on it. The reference is given up first (otherwise removal would
    /// wait for it forever); returns true if this call freed the object.
    pub fn remove_self(self) -> bool {
        let owner = self.owner;
        drop(self);
        owner.remove()
    }
}

impl<T> Deref for ActiveRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self.slot.as_deref() {
            Some(Some(obj)) => obj,
            _ => unreachable!("object released before drop"),
        }
    }
}

impl<T> Drop for ActiveRef<'_, T> {
    fn drop(&mut self) {
        drop(self.slot.take());
        self.owner.put_active();
    }
}

impl<T: fmt::Debug> fmt::Debug for ActiveRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ActiveRef").field(&**self).finish()
    }
}

/// An active reference that owns a handle on its object's [`Revocable`]:
/// it can be stored (an operation in flight across events of a model) or
/// sent to another thread.
pub struct OwnedActiveRef<T> {
    owner: Arc<Revocable<T>>,
    /// `Some` until dropped: the clone is released before the count, so a
    /// remover that sees the count drained finds the object's `Arc` unique
    /// and frees it itself.
    obj: Option<Arc<T>>,
}

impl<T> Deref for OwnedActiveRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.obj {
            Some(obj) => obj,
            None => unreachable!("object released before drop"),
        }
    }
}

impl<T> Drop for OwnedActiveRef<T> {
    fn drop(&mut self) {
        drop(self.obj.take());
        self.owner.put_active();
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedActiveRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedActiveRef").field(&**self).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A driver's per-device data that records when it is freed.
    #[derive(Debug)]
    struct Mouse {
        buttons: u32,
        freed: std::sync::Arc<AtomicBool>,
    }

    impl Drop for Mouse {
        fn drop(&mut self) {
            self.freed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn mouse() -> (Revocable<Mouse>, std::sync::Arc<AtomicBool>) {
        let freed = std::sync::Arc::new(AtomicBool::new(false));
        let m = Mouse {
            buttons: 3,
            freed: std::sync::Arc::clone(&freed),
        };
        (Revocable::new(m), freed)
    }

    fn freed(f: &AtomicBool) -> bool {
        f.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn references_count_up_and_down() {
        let (r, _) = mouse();
        assert_eq!(r.state(), State::Live { active: 0 });
        let a = r.try_get().unwrap();
        let b = r.try_get().unwrap();
        assert_eq!(a.buttons + b.buttons, 6);
        assert_eq!(r.state(), State::Live { active: 2 });
        r.assert_invariants();
        drop(a);
        assert_eq!(r.active(), 1);
        drop(b);
        assert_eq!(r.state(), State::Live { active: 0 });
        r.assert_invariants();
    }

    #[test]
    fn removal_frees_at_once_and_later_gets_are_enodev() {
        let (r, f) = mouse();
        assert!(r.remove(), "the only remover frees");
        assert!(
            freed(&f),
            "freed when remove returns, not when the Revocable goes"
        );
        assert_eq!(r.state(), State::Gone);
        assert_eq!(r.try_get().unwrap_err(), Gone);
        assert_eq!(Gone.errno(), ENODEV);
        let e: std::io::Error = Gone.into();
        assert_eq!(e.raw_os_error(), Some(19));
        assert!(!r.remove(), "a second remove finds nothing to free");
        r.assert_invariants();
    }

    #[test]
    fn the_bias_arithmetic_is_the_kernels() {
        // KN_DEACTIVATED_BIAS = INT_MIN + 1: with two references held the
        // counter reads BIAS + 2 after deactivation and BIAS when drained.
        let (r, f) = mouse();
        let a = r.try_get().unwrap();
        let b = r.try_get().unwrap();
        assert!(r.deactivate());
        assert!(!r.deactivate(), "the bias is added once");
        assert_eq!(r.active.load(Ordering::SeqCst), DEACTIVATED_BIAS + 2);
        assert_eq!(r.state(), State::Draining { active: 2 });
        assert_eq!(
            r.try_get().unwrap_err(),
            Gone,
            "no new reference while draining"
        );
        assert!(!r.reap(), "not drained yet");
        drop(a);
        assert_eq!(r.state(), State::Draining { active: 1 });
        // The object is still there for the reference in flight.
        assert_eq!(b.buttons, 3);
        assert!(!freed(&f));
        drop(b);
        assert_eq!(r.active.load(Ordering::SeqCst), DEACTIVATED_BIAS);
        assert_eq!(r.state(), State::Drained);
        r.assert_invariants();
        assert!(r.reap());
        assert!(freed(&f));
        assert_eq!(r.state(), State::Gone);
    }

    #[test]
    fn remove_waits_for_the_operation_in_flight() {
        let (r, f) = mouse();
        let r = std::sync::Arc::new(r);
        let op = Revocable::try_get_owned(&r).unwrap();
        let remover = {
            let r = std::sync::Arc::clone(&r);
            std::thread::spawn(move || r.remove())
        };
        // The remover cannot finish while `op` is held, whatever it has
        // reached: wait until it has at least begun, then check.
        while r.state() == (State::Live { active: 1 }) {
            std::thread::yield_now();
        }
        assert_eq!(r.state(), State::Draining { active: 1 });
        assert!(!freed(&f), "the in-flight operation still sees its object");
        assert_eq!(op.buttons, 3);
        drop(op);
        assert!(remover.join().unwrap());
        assert!(freed(&f));
    }

    #[test]
    fn an_operation_can_remove_its_own_object() {
        // A `store()` to a "remove" attribute: without giving up its own
        // reference first it would wait for itself forever.
        let (r, f) = mouse();
        let op = r.try_get().unwrap();
        assert!(op.remove_self());
        assert!(freed(&f));
        assert_eq!(r.state(), State::Gone);
    }

    #[test]
    fn dropping_a_live_revocable_frees_its_object() {
        let (r, f) = mouse();
        drop(r);
        assert!(freed(&f));
    }
}
