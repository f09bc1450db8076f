//! Tasks, process ids, parent/child lists, exit, reparenting and wait():
//! the part of kernel/fork.c, kernel/exit.c and kernel/pid.c (2.6.20) that
//! decides how long `wait()` searches.
//!
//! ```text
//!   TaskTable
//!     pids: PidMap            kernel/pid.c: a bitmap of pid_max bits, last_pid
//!     slots[id]: Task         struct task_struct, the fields that matter here
//!       pid, name, parent
//!       state                 Running | Zombie
//!       exit_signal           Sigchld | Zero | Autoreap (-1)
//!       ignores_sigchld       SIGCHLD set to SIG_IGN: children reaped at exit
//!       children: List        p->children: a list_head of the children's
//!       zombies: List           p->sibling nodes (and, under the zombie-list
//!       sib_prev, sib_next      policy, a second list for exited children)
//! ```
//!
//! The lists are intrusive doubly-linked lists over slot indices, like
//! `list_head`: add at the tail, delete or move to the head in O(1), walk
//! from the head. [`TaskTable::wait_any`] walks one node at a time and
//! counts every node it looks at: that count is the cost seed 003 is about.
//!
//! # Rules (2.6.20, and the fixes proposed in seed 003 as policies)
//!
//! * fork (`copy_process()`): the child is added at the **tail** of its
//!   parent's children (`add_parent()` = `list_add_tail`).
//! * exit (`exit_notify()`): the task becomes a zombie. Its own children
//!   are reparented to init (`forget_original_parent()`, `reparent_thread()`):
//!   appended at the tail of init's list, with `exit_signal` set to SIGCHLD
//!   unless it was -1. Then its parent is told (`do_notify_parent()`): if the
//!   task's `exit_signal` is -1, or it is SIGCHLD and the parent ignores
//!   SIGCHLD, the task is released at once (autoreap); otherwise it stays a
//!   zombie on its parent's list until the parent waits for it.
//! * wait (`do_wait()`): walk the parent's children from the head; reap the
//!   first zombie found; if none, the walk covered the whole list.
//! * [`ZombiePlacement::Head`] (Robin Holt's patch): a child that becomes a
//!   zombie, or arrives as a zombie by reparenting, is moved to the head of
//!   its parent's list, so wait finds it first.
//! * [`ZombiePlacement::ZombieList`] (Linus's first alternative): zombies
//!   live on a separate list that wait walks instead.
//! * pid allocation (`alloc_pidmap()`): the first free pid after `last_pid`,
//!   wrapping to [`RESERVED_PIDS`] at `pid_max`; none free is `EAGAIN`.
//!
//! # Invariants ([`TaskTable::assert_invariants`])
//!
//! * every live task but the first (init's parent, the idle task, is not
//!   modelled) is on exactly one list of its parent: `children` if
//!   running, `children` or `zombies` if a zombie;
//! * `list.len` equals the nodes reachable from `list.head`, and the walk
//!   backwards from `tail` gives the same nodes;
//! * `pids in use == live tasks`, and each live task's pid is in use.
//!
//! # Memory ([`TaskTable::with_slab`])
//!
//! A table made `with_slab` gives each task a `task_struct` object from a
//! SLUB cache (`dup_task_struct()` -> `alloc_task_struct()` =
//! `kmem_cache_alloc(task_struct_cachep)`, freed by `free_task()` when the
//! task is released) and counts its kernel stack (`alloc_thread_info()`:
//! [`THREAD_SIZE`] bytes from the page allocator). A fork that finds no
//! memory fails with `ENOMEM`.

use std::collections::BTreeMap;

use klab_slab::{CacheId, CacheSpec, Geometry, ModelSlab, ObjId, SlabFlags};

/// A process id.
pub type Pid = u32;

/// A slot in the task table.
pub type TaskId = usize;

/// Default `pid_max` (`PID_MAX_DEFAULT`, 0x8000): pids 1..=32767.
pub const PID_MAX_DEFAULT: Pid = 32768;

/// After wrapping, pids restart here (`RESERVED_PIDS`), leaving the low
/// pids to early daemons.
pub const RESERVED_PIDS: Pid = 300;

/// Later kernels scale the default with the CPUs (`PIDS_PER_CPU_DEFAULT`):
/// `pid_max = max(32768, 1024 * nr_cpus)`.
pub const PIDS_PER_CPU_DEFAULT: Pid = 1024;

/// The pid limit later kernels pick by default for `nr_cpus` CPUs.
pub fn scaled_pid_max(nr_cpus: usize) -> Pid {
    let per_cpu = Pid::try_from(nr_cpus)
        .unwrap_or(Pid::MAX)
        .saturating_mul(PIDS_PER_CPU_DEFAULT);
    per_cpu.max(PID_MAX_DEFAULT)
}

/// `sizeof(struct task_struct)` of the 2.6.22 x86-64 kernel whose
/// `/proc/slabinfo` the `slub` experiment's cache set is modelled on.
pub const TASK_STRUCT_SIZE: u32 = 1888;

/// `ARCH_MIN_TASKALIGN` on x86-64: the cache's alignment (`fork_init()`).
pub const TASK_STRUCT_ALIGN: u32 = 16;

/// `THREAD_SIZE` on x86-64 in 2.6.x: a kernel stack (with `thread_info`)
/// of two pages (`THREAD_ORDER` 1).
pub const THREAD_SIZE: u64 = 8192;

/// `fork_init()`'s cache: `kmem_cache_create("task_struct",
/// sizeof(struct task_struct), ARCH_MIN_TASKALIGN, SLAB_PANIC, NULL)`.
pub fn task_struct_spec() -> CacheSpec {
    CacheSpec {
        name: "task_struct".into(),
        size: TASK_STRUCT_SIZE,
        align: TASK_STRUCT_ALIGN,
        flags: SlabFlags::PANIC.0,
        zero_ctor: false,
    }
}

/// The `task_struct` cache of a table and each slot's object.
#[derive(Clone, Debug)]
struct TaskSlab {
    slab: ModelSlab,
    cache: CacheId,
    objs: Vec<Option<ObjId>>,
}

/// Memory the live tasks of a [`TaskTable::with_slab`] table hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskMemory {
    /// `task_struct` objects.
    pub task_structs: u64,
    /// Bytes of the `task_struct` cache's slabs.
    pub slab_bytes: u64,
    /// Bytes of kernel stacks.
    pub stack_bytes: u64,
}

/// Errors of the task model, as the kernel's errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No free pid below `pid_max` (`alloc_pidmap()` fails: fork returns
    /// `-EAGAIN`).
    #[error("EAGAIN: all {pid_max} pids are in use")]
    NoPid {
        /// The limit hit.
        pid_max: Pid,
    },
    /// No memory for a `task_struct` (`dup_task_struct()` fails: fork
    /// returns `-ENOMEM`).
    #[error("ENOMEM: no memory for a task_struct")]
    NoMemory,
}

/// The pid bitmap (kernel/pid.c): which pids are in use, and where the
/// next search starts.
#[derive(Clone, Debug)]
pub struct PidMap {
    pid_max: Pid,
    last_pid: Pid,
    used: Vec<bool>,
    nr_used: usize,
}

impl PidMap {
    /// An empty map for pids `1..pid_max` (pid 0 is the idle task's).
    pub fn new(pid_max: Pid) -> PidMap {
        PidMap {
            pid_max: pid_max.max(2),
            last_pid: 0,
            used: vec![false; pid_max.max(2) as usize],
            nr_used: 0,
        }
    }

    /// The limit.
    pub fn pid_max(&self) -> Pid {
        self.pid_max
    }

    /// Pids in use.
    pub fn nr_used(&self) -> usize {
        self.nr_used
    }

    /// Allocates the next pid (mirrors `alloc_pidmap()`: scan up from
    /// `last_pid + 1`; past `pid_max - 1`, wrap to `RESERVED_PIDS`).
    pub fn alloc(&mut self) -> Result<Pid, TaskError> {
        let max = self.pid_max;
        if self.nr_used >= (max - 1) as usize {
            // Every pid 1..pid_max is taken: the scan below would fail
            // after looking at all of them.
            return Err(TaskError::NoPid { pid_max: max });
        }
        let mut pid = self.last_pid + 1;
        if pid >= max {
            pid = RESERVED_PIDS.min(max - 1).max(1);
        }
        let start = pid;
        loop {
            if !self.used[pid as usize] {
                self.used[pid as usize] = true;
                self.nr_used += 1;
                self.last_pid = pid;
                return Ok(pid);
            }
            pid += 1;
            if pid >= max {
                pid = RESERVED_PIDS.min(max - 1).max(1);
            }
            if pid == start {
                return Err(TaskError::NoPid { pid_max: max });
            }
        }
    }

    /// Frees `pid`.
    pub fn free(&mut self, pid: Pid) {
        let slot = &mut self.used[pid as usize];
        debug_assert!(*slot, "freeing free pid {pid}");
        if *slot {
            *slot = false;
            self.nr_used -= 1;
        }
    }
}

/// Run state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Alive.
    Running,
    /// Exited, waiting for its parent to reap it (`EXIT_ZOMBIE`).
    Zombie,
}

/// What a task's parent is told when it exits (`task->exit_signal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitSignal {
    /// SIGCHLD: the parent is signalled and must wait (or ignore SIGCHLD).
    Sigchld,
    /// 0: no signal, but the task stays a zombie until waited for (a
    /// `kernel_thread()` without a signal in its flags, as stop_machine's).
    Zero,
    /// -1: released at exit, never a zombie (a detached thread).
    Autoreap,
}

/// Whether a task is a kernel thread or a user process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// A kernel thread.
    Kernel,
    /// A user process.
    User,
}

/// Where an exited child waits for its parent: the policy seed 003's fixes
/// differ in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZombiePlacement {
    /// Where it was (2.6.20): wait walks past every older live child.
    #[default]
    InPlace,
    /// Moved to the head of the parent's list (Robin Holt's patch).
    Head,
    /// Moved to a separate list of zombies (Linus's suggestion).
    ZombieList,
}

/// An intrusive list: head, tail, length (a `list_head` with a count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct List {
    head: Option<TaskId>,
    tail: Option<TaskId>,
    len: usize,
}

impl List {
    /// Nodes on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Which list of its parent a task is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnList {
    None,
    Children,
    Zombies,
}

/// One task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its pid.
    pub pid: Pid,
    /// `comm`.
    pub name: String,
    /// Kernel thread or user process.
    pub kind: TaskKind,
    /// Its parent, `None` for the first task (init, whose parent, the idle
    /// task, is not modelled).
    pub parent: Option<TaskId>,
    /// Running or zombie.
    pub state: TaskState,
    /// What its parent is told when it exits.
    pub exit_signal: ExitSignal,
    /// SIGCHLD is SIG_IGN: its children are reaped when they exit.
    pub ignores_sigchld: bool,
    children: List,
    zombies: List,
    sib_prev: Option<TaskId>,
    sib_next: Option<TaskId>,
    on: OnList,
}

/// What one `wait()` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitResult {
    /// The pid reaped, if a zombie was found.
    pub reaped: Option<Pid>,
    /// List nodes looked at.
    pub visited: u64,
}

/// What reaping every zombie child did (a parent's `while (waitpid(-1,
/// WNOHANG) > 0)` loop: one `wait()` per zombie, and a last one that finds
/// none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReapResult {
    /// Zombies reaped.
    pub reaped: u64,
    /// `wait()` calls, the last unsuccessful one included.
    pub calls: u64,
    /// List nodes looked at in all.
    pub visited: u64,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Tasks created.
    pub forks: u64,
    /// Forks refused for want of a pid.
    pub fork_failures: u64,
    /// Tasks that exited.
    pub exits: u64,
    /// Tasks released at exit without a wait (autoreap).
    pub autoreaped: u64,
    /// Children moved to init because their parent exited.
    pub reparented: u64,
}

/// The task table.
#[derive(Clone, Debug)]
pub struct TaskTable {
    pids: PidMap,
    slots: Vec<Option<Task>>,
    free_slots: Vec<TaskId>,
    by_pid: BTreeMap<Pid, TaskId>,
    reaper: Option<TaskId>,
    placement: ZombiePlacement,
    stats: TaskStats,
    slab: Option<TaskSlab>,
}

impl TaskTable {
    /// An empty table with `pid_max` and a zombie placement policy.
    pub fn new(pid_max: Pid, placement: ZombiePlacement) -> TaskTable {
        TaskTable {
            pids: PidMap::new(pid_max),
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_pid: BTreeMap::new(),
            reaper: None,
            placement,
            stats: TaskStats::default(),
            slab: None,
        }
    }

    /// An empty table whose tasks take `task_struct` objects from SLUB
    /// and kernel stacks (see the module header). The frame pool holds
    /// `pid_max` of them, within `klab_slab::model::MAX_POOL_BYTES`.
    pub fn with_slab(pid_max: Pid, placement: ZombiePlacement) -> TaskTable {
        let slot = u64::from(TASK_STRUCT_SIZE.next_multiple_of(TASK_STRUCT_ALIGN));
        let frames = (u64::from(pid_max) * slot).div_ceil(klab_slab::page::PAGE_SIZE as u64);
        Self::with_slab_in(pid_max, placement, Geometry::for_machine(1, frames, 1))
    }

    fn with_slab_in(pid_max: Pid, placement: ZombiePlacement, geometry: Geometry) -> TaskTable {
        let mut slab = ModelSlab::new(geometry).expect("a one-node geometry within the pool limit");
        let cache = slab
            .create(task_struct_spec())
            .expect("the task_struct cache fits a slab");
        TaskTable {
            slab: Some(TaskSlab {
                slab,
                cache,
                objs: Vec::new(),
            }),
            ..TaskTable::new(pid_max, placement)
        }
    }

    /// What the live tasks hold, for a table made [`with_slab`](Self::with_slab).
    pub fn memory(&self) -> Option<TaskMemory> {
        let s = self.slab.as_ref()?;
        let st = s.slab.kmem_cache(s.cache)?.stats();
        Some(TaskMemory {
            task_structs: s.objs.iter().flatten().count() as u64,
            slab_bytes: st.bytes as u64,
            stack_bytes: self.nr_tasks() as u64 * THREAD_SIZE,
        })
    }

    /// The pid map.
    pub fn pids(&self) -> &PidMap {
        &self.pids
    }

    /// Counters.
    pub fn stats(&self) -> TaskStats {
        self.stats
    }

    /// Live tasks (running or zombie).
    pub fn nr_tasks(&self) -> usize {
        self.by_pid.len()
    }

    /// Live tasks of `kind`.
    pub fn count_kind(&self, kind: TaskKind) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|t| t.kind == kind)
            .count()
    }

    /// The task in slot `id`.
    ///
    /// # Panics
    /// If the slot is empty (a caller bug: ids come from this table).
    pub fn task(&self, id: TaskId) -> &Task {
        self.slots[id].as_ref().expect("live task")
    }

    fn task_mut(&mut self, id: TaskId) -> &mut Task {
        self.slots[id].as_mut().expect("live task")
    }

    /// The slot of `pid`.
    pub fn find(&self, pid: Pid) -> Option<TaskId> {
        self.by_pid.get(&pid).copied()
    }

    /// The children list of `id` (its running children, and its zombies
    /// unless they are kept on the zombie list).
    pub fn children(&self, id: TaskId) -> List {
        self.task(id).children
    }

    /// Pids on `id`'s children list, head first.
    pub fn children_pids(&self, id: TaskId) -> Vec<Pid> {
        self.walk(self.task(id).children)
            .map(|c| self.task(c).pid)
            .collect()
    }

    fn walk(&self, list: List) -> impl Iterator<Item = TaskId> + '_ {
        std::iter::successors(list.head, move |&c| self.task(c).sib_next)
    }

    /// Creates the first task, the reaper of orphans (init, pid 1).
    ///
    /// # Panics
    /// If a task exists already.
    pub fn spawn_init(&mut self, name: &str) -> Result<TaskId, TaskError> {
        assert!(self.by_pid.is_empty(), "init must be the first task");
        let id = self.create(None, name, TaskKind::User, ExitSignal::Sigchld)?;
        self.reaper = Some(id);
        Ok(id)
    }

    /// Creates a kernel thread whose parent is the idle task, which is not
    /// modelled (kthreadd: "a true child of init_task", ppid 0). It is on
    /// nobody's list and never exits here.
    pub fn spawn_orphan_kthread(&mut self, name: &str) -> Result<TaskId, TaskError> {
        self.create(None, name, TaskKind::Kernel, ExitSignal::Sigchld)
    }

    /// Forks a child of `parent` (kernel: `copy_process()`, which adds it
    /// at the tail of the parent's children).
    pub fn fork(
        &mut self,
        parent: TaskId,
        name: &str,
        kind: TaskKind,
        exit_signal: ExitSignal,
    ) -> Result<TaskId, TaskError> {
        let id = self.create(Some(parent), name, kind, exit_signal)?;
        self.list_add_tail(parent, id, OnList::Children);
        Ok(id)
    }

    fn create(
        &mut self,
        parent: Option<TaskId>,
        name: &str,
        kind: TaskKind,
        exit_signal: ExitSignal,
    ) -> Result<TaskId, TaskError> {
        let pid = match self.pids.alloc() {
            Ok(p) => p,
            Err(e) => {
                self.stats.fork_failures += 1;
                return Err(e);
            }
        };
        // dup_task_struct(): the task_struct (and the stack, which the
        // model counts but does not allocate).
        let obj = match self.slab.as_mut() {
            Some(s) => match s.slab.alloc(s.cache, 0, u64::from(pid)) {
                Ok(obj) => Some(obj),
                Err(_) => {
                    self.pids.free(pid);
                    self.stats.fork_failures += 1;
                    return Err(TaskError::NoMemory);
                }
            },
            None => None,
        };
        let task = Task {
            pid,
            name: name.to_owned(),
            kind,
            parent,
            state: TaskState::Running,
            exit_signal,
            ignores_sigchld: false,
            children: List::default(),
            zombies: List::default(),
            sib_prev: None,
            sib_next: None,
            on: OnList::None,
        };
        let id = match self.free_slots.pop() {
            Some(id) => {
                self.slots[id] = Some(task);
                id
            }
            None => {
                self.slots.push(Some(task));
                self.slots.len() - 1
            }
        };
        self.by_pid.insert(pid, id);
        if let Some(s) = self.slab.as_mut() {
            if s.objs.len() <= id {
                s.objs.resize(id + 1, None);
            }
            s.objs[id] = obj;
        }
        self.stats.forks += 1;
        Ok(id)
    }

    /// Sets SIGCHLD to SIG_IGN for `id`: its children are released when
    /// they exit (as a workqueue worker and kthreadd do).
    pub fn ignore_sigchld(&mut self, id: TaskId) {
        self.task_mut(id).ignores_sigchld = true;
    }

    fn list_of(&mut self, parent: TaskId, which: OnList) -> &mut List {
        let p = self.task_mut(parent);
        match which {
            OnList::Zombies => &mut p.zombies,
            OnList::Children | OnList::None => &mut p.children,
        }
    }

    fn list_add_tail(&mut self, parent: TaskId, id: TaskId, which: OnList) {
        let old_tail = self.list_of(parent, which).tail;
        {
            let t = self.task_mut(id);
            debug_assert_eq!(t.on, OnList::None);
            t.sib_prev = old_tail;
            t.sib_next = None;
            t.on = which;
        }
        match old_tail {
            Some(tail) => self.task_mut(tail).sib_next = Some(id),
            None => self.list_of(parent, which).head = Some(id),
        }
        let l = self.list_of(parent, which);
        l.tail = Some(id);
        l.len += 1;
    }

    fn list_add_head(&mut self, parent: TaskId, id: TaskId, which: OnList) {
        let old_head = self.list_of(parent, which).head;
        {
            let t = self.task_mut(id);
            debug_assert_eq!(t.on, OnList::None);
            t.sib_prev = None;
            t.sib_next = old_head;
            t.on = which;
        }
        match old_head {
            Some(head) => self.task_mut(head).sib_prev = Some(id),
            None => self.list_of(parent, which).tail = Some(id),
        }
        let l = self.list_of(parent, which);
        l.head = Some(id);
        l.len += 1;
    }

    fn list_del(&mut self, id: TaskId) {
        let (parent, prev, next, which) = {
            let t = self.task(id);
            (t.parent, t.sib_prev, t.sib_next, t.on)
        };
        let Some(parent) = parent else {
            return;
        };
        if which == OnList::None {
            return;
        }
        match prev {
            Some(p) => self.task_mut(p).sib_next = next,
            None => self.list_of(parent, which).head = next,
        }
        match next {
            Some(n) => self.task_mut(n).sib_prev = prev,
            None => self.list_of(parent, which).tail = prev,
        }
        self.list_of(parent, which).len -= 1;
        let t = self.task_mut(id);
        t.sib_prev = None;
        t.sib_next = None;
        t.on = OnList::None;
    }

    /// Puts zombie `id` where the placement policy wants it on its
    /// parent's lists.
    fn place_zombie(&mut self, id: TaskId, arriving: bool) {
        let Some(parent) = self.task(id).parent else {
            return;
        };
        match self.placement {
            ZombiePlacement::InPlace => {
                if arriving {
                    self.list_add_tail(parent, id, OnList::Children);
                }
            }
            ZombiePlacement::Head => {
                if !arriving {
                    self.list_del(id);
                }
                self.list_add_head(parent, id, OnList::Children);
            }
            ZombiePlacement::ZombieList => {
                if !arriving {
                    self.list_del(id);
                }
                self.list_add_tail(parent, id, OnList::Zombies);
            }
        }
    }

    /// Frees a task (kernel: `release_task()`): off its parent's list, pid
    /// and slot freed.
    fn release(&mut self, id: TaskId) {
        self.list_del(id);
        let pid = self.task(id).pid;
        self.pids.free(pid);
        self.by_pid.remove(&pid);
        self.slots[id] = None;
        self.free_slots.push(id);
        if let Some(s) = self.slab.as_mut() {
            // free_task(): the task_struct goes back to its cache.
            let obj = s.objs[id].take().expect("a live task has its task_struct");
            s.slab
                .free(s.cache, 0, obj, u64::from(pid))
                .expect("a task's task_struct is live and tagged with its pid");
        }
    }

    /// `id` exits (kernel: `do_exit()` → `exit_notify()`): reparent its
    /// children to init, then become a zombie or, if its parent does not
    /// wait for it, be released.
    ///
    /// # Panics
    /// If `id` is init or not running (caller bugs).
    pub fn exit(&mut self, id: TaskId) {
        assert_eq!(self.task(id).state, TaskState::Running, "exit of a zombie");
        assert_ne!(Some(id), self.reaper, "init exits");
        assert!(self.task(id).parent.is_some(), "a parentless kthread exits");
        self.stats.exits += 1;
        self.forget_original_parent(id);
        self.task_mut(id).state = TaskState::Zombie;
        let parent = self.task(id).parent.expect("non-init task has a parent");
        let sig = self.task(id).exit_signal;
        let autoreap = match sig {
            ExitSignal::Autoreap => true,
            ExitSignal::Sigchld => self.task(parent).ignores_sigchld,
            ExitSignal::Zero => false,
        };
        if autoreap {
            self.stats.autoreaped += 1;
            self.release(id);
        } else {
            self.place_zombie(id, false);
        }
    }

    /// Moves every child of `id` to init (kernel: `forget_original_parent()`
    /// with `reparent_thread()`): appended at the tail of init's children,
    /// `exit_signal` set to SIGCHLD unless it is -1; a child that is a
    /// zombie already is placed by the zombie policy (init is signalled and
    /// will wait for it).
    fn forget_original_parent(&mut self, id: TaskId) {
        let Some(reaper) = self.reaper else {
            return;
        };
        let kids: Vec<TaskId> = {
            let t = self.task(id);
            self.walk(t.children).chain(self.walk(t.zombies)).collect()
        };
        for c in kids {
            self.list_del(c);
            self.stats.reparented += 1;
            let t = self.task_mut(c);
            t.parent = Some(reaper);
            if t.exit_signal != ExitSignal::Autoreap {
                t.exit_signal = ExitSignal::Sigchld;
            }
            if t.state == TaskState::Zombie {
                if self.task(reaper).ignores_sigchld {
                    self.stats.autoreaped += 1;
                    self.release(c);
                } else {
                    self.place_zombie(c, true);
                }
            } else {
                self.list_add_tail(reaper, c, OnList::Children);
            }
        }
    }

    /// One `wait()` by `parent` for any child (kernel: `do_wait()`): walks
    /// its zombie list (zombie-list policy) or its children from the head,
    /// and reaps the first zombie. Counts every node looked at.
    pub fn wait_any(&mut self, parent: TaskId) -> WaitResult {
        let list = match self.placement {
            ZombiePlacement::ZombieList => self.task(parent).zombies,
            _ => self.task(parent).children,
        };
        let mut visited = 0;
        let mut cur = list.head;
        while let Some(c) = cur {
            visited += 1;
            let t = self.task(c);
            if t.state == TaskState::Zombie {
                let pid = t.pid;
                self.release(c);
                return WaitResult {
                    reaped: Some(pid),
                    visited,
                };
            }
            cur = t.sib_next;
        }
        WaitResult {
            reaped: None,
            visited,
        }
    }

    /// Reaps every zombie child of `parent`: `wait()` until one finds none.
    pub fn reap_all(&mut self, parent: TaskId) -> ReapResult {
        let mut r = ReapResult::default();
        loop {
            let w = self.wait_any(parent);
            r.calls += 1;
            r.visited += w.visited;
            if w.reaped.is_none() {
                return r;
            }
            r.reaped += 1;
        }
    }

    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        assert_eq!(
            self.pids.nr_used(),
            self.by_pid.len(),
            "pids in use != tasks"
        );
        if let Some(s) = &self.slab {
            s.slab.assert_invariants();
            for (id, slot) in self.slots.iter().enumerate() {
                let obj = s.objs.get(id).copied().flatten();
                match slot {
                    Some(t) => {
                        let obj = obj.expect("a live task has a task_struct");
                        assert_eq!(s.slab.tag(obj), Some(u64::from(t.pid)), "task_struct tag");
                    }
                    None => assert!(obj.is_none(), "a free slot holds no task_struct"),
                }
            }
            assert_eq!(
                s.slab.live_objects(s.cache),
                self.nr_tasks(),
                "task_structs"
            );
        }
        let mut on_lists = 0;
        for (id, slot) in self.slots.iter().enumerate() {
            let Some(t) = slot else { continue };
            assert_eq!(self.find(t.pid), Some(id), "pid map");
            for (list, which) in [(t.children, OnList::Children), (t.zombies, OnList::Zombies)] {
                let fwd: Vec<TaskId> = self.walk(list).collect();
                assert_eq!(fwd.len(), list.len, "{}: list length", t.name);
                let back: Vec<TaskId> =
                    std::iter::successors(list.tail, |&c| self.task(c).sib_prev).collect();
                assert!(fwd.iter().eq(back.iter().rev()), "{}: list links", t.name);
                for c in fwd {
                    let ct = self.task(c);
                    assert_eq!(
                        ct.parent,
                        Some(id),
                        "{} on the wrong parent's list",
                        ct.name
                    );
                    assert_eq!(ct.on, which);
                    if which == OnList::Zombies {
                        assert_eq!(ct.state, TaskState::Zombie);
                    }
                    on_lists += 1;
                }
            }
        }
        let parented = self
            .slots
            .iter()
            .flatten()
            .filter(|t| t.parent.is_some())
            .count();
        assert_eq!(
            on_lists, parented,
            "a task with a parent is on none of its lists"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_holds_a_task_struct_and_a_stack_until_released() {
        let mut t = TaskTable::with_slab(PID_MAX_DEFAULT, ZombiePlacement::InPlace);
        let init = t.spawn_init("init").unwrap();
        let kids: Vec<TaskId> = (0..10)
            .map(|i| {
                t.fork(
                    init,
                    &format!("k{i}"),
                    TaskKind::Kernel,
                    ExitSignal::Sigchld,
                )
                .unwrap()
            })
            .collect();
        t.assert_invariants();
        let l = *t
            .slab
            .as_ref()
            .unwrap()
            .slab
            .kmem_cache(CacheId(0))
            .unwrap()
            .layout();
        // 1888 bytes at 16-byte alignment: 4 to an order-1 slab (2.6.24
        // calculate_order() with slub_min_objects = 4).
        assert_eq!((l.size, l.objects, l.order), (1888, 4, 1));
        // 11 tasks: 3 slabs of 8 KiB, 11 stacks of 8 KiB.
        let m = t.memory().unwrap();
        assert_eq!(
            (m.task_structs, m.slab_bytes, m.stack_bytes),
            (11, 3 * 8192, 11 * 8192)
        );
        for &k in &kids[..4] {
            t.exit(k);
        }
        // Zombies keep their task_struct until init reaps them.
        assert_eq!(t.memory().unwrap().task_structs, 11);
        while t.wait_any(init).reaped.is_some() {}
        t.assert_invariants();
        let m = t.memory().unwrap();
        assert_eq!((m.task_structs, m.stack_bytes), (7, 7 * 8192));
        // A copy is the same table, slab and all.
        let mut c = t.clone();
        let (a, b) = (
            t.fork(init, "x", TaskKind::User, ExitSignal::Sigchld)
                .unwrap(),
            c.fork(init, "x", TaskKind::User, ExitSignal::Sigchld)
                .unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(t.memory(), c.memory());
        c.assert_invariants();
    }

    #[test]
    fn a_fork_without_memory_fails_with_enomem_and_frees_its_pid() {
        let g = Geometry {
            nodes: 1,
            sections_per_node: 1,
            cpus_per_node: 1,
        };
        let mut t = TaskTable::with_slab_in(PID_MAX_DEFAULT, ZombiePlacement::InPlace, g);
        let init = t.spawn_init("init").unwrap();
        let mut n = 1;
        let err = loop {
            match t.fork(init, "k", TaskKind::Kernel, ExitSignal::Sigchld) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        // One section: its usable frames in order-1 slabs of 4 task_structs.
        assert_eq!(n, klab_slab::page::USABLE_PAGES / 2 * 4);
        assert_eq!(err, TaskError::NoMemory);
        assert_eq!(t.pids().nr_used(), n);
        assert_eq!(t.stats().fork_failures, 1);
        t.assert_invariants();
    }

    /// init with running children a, b, c (in fork order) and a zombie z
    /// forked last.
    fn family(placement: ZombiePlacement) -> (TaskTable, TaskId, TaskId) {
        let mut t = TaskTable::new(PID_MAX_DEFAULT, placement);
        let init = t.spawn_init("init").unwrap();
        for n in ["a", "b", "c"] {
            t.fork(init, n, TaskKind::User, ExitSignal::Sigchld)
                .unwrap();
        }
        let z = t
            .fork(init, "z", TaskKind::User, ExitSignal::Sigchld)
            .unwrap();
        t.assert_invariants();
        (t, init, z)
    }

    #[test]
    fn wait_walks_past_older_children_to_a_zombie_at_the_tail() {
        // [a b c z]: z exits in place; wait looks at a, b, c, z (4 nodes)
        // and reaps it; the next wait looks at a, b, c (3) and finds none.
        let (mut t, init, z) = family(ZombiePlacement::InPlace);
        t.exit(z);
        t.assert_invariants();
        assert_eq!(
            t.wait_any(init),
            WaitResult {
                reaped: Some(5),
                visited: 4
            }
        );
        assert_eq!(
            t.wait_any(init),
            WaitResult {
                reaped: None,
                visited: 3
            }
        );
        t.assert_invariants();
        assert_eq!(t.pids().nr_used(), 4);
    }

    #[test]
    fn holts_patch_moves_the_zombie_to_the_head() {
        // [z a b c]: found at the first node.
        let (mut t, init, z) = family(ZombiePlacement::Head);
        t.exit(z);
        assert_eq!(t.children_pids(init), vec![5, 2, 3, 4]);
        t.assert_invariants();
        assert_eq!(
            t.reap_all(init),
            ReapResult {
                reaped: 1,
                calls: 2,
                visited: 1 + 3
            }
        );
    }

    #[test]
    fn a_zombie_list_never_walks_the_live_children() {
        let (mut t, init, z) = family(ZombiePlacement::ZombieList);
        t.exit(z);
        assert_eq!(t.children(init).len(), 3);
        t.assert_invariants();
        assert_eq!(
            t.reap_all(init),
            ReapResult {
                reaped: 1,
                calls: 2,
                visited: 1
            }
        );
    }

    #[test]
    fn children_of_an_exiting_task_go_to_the_tail_of_inits_list_and_autoreap_skips_wait() {
        let mut t = TaskTable::new(PID_MAX_DEFAULT, ZombiePlacement::InPlace);
        let init = t.spawn_init("init").unwrap();
        let d = t
            .fork(init, "daemon", TaskKind::User, ExitSignal::Sigchld)
            .unwrap();
        let p = t
            .fork(init, "parent", TaskKind::Kernel, ExitSignal::Autoreap)
            .unwrap();
        let k1 = t.fork(p, "k1", TaskKind::Kernel, ExitSignal::Zero).unwrap();
        let k2 = t.fork(p, "k2", TaskKind::Kernel, ExitSignal::Zero).unwrap();
        let _ = d;
        t.exit(k1); // zombie under p: exit_signal 0 tells nobody
        t.exit(k2);
        assert_eq!(t.children(p).len(), 2);
        t.exit(p); // p autoreaps; k1, k2 move to init as SIGCHLD zombies
        t.assert_invariants();
        assert_eq!(t.children_pids(init), vec![2, 4, 5]);
        assert_eq!(t.stats().reparented, 2);
        assert_eq!(t.stats().autoreaped, 1);
        // wait: daemon, k1 -> 2 nodes; daemon, k2 -> 2; daemon -> 1.
        assert_eq!(
            t.reap_all(init),
            ReapResult {
                reaped: 2,
                calls: 3,
                visited: 5
            }
        );
        t.assert_invariants();
    }

    #[test]
    fn a_parent_that_ignores_sigchld_never_keeps_zombies() {
        let mut t = TaskTable::new(PID_MAX_DEFAULT, ZombiePlacement::InPlace);
        let init = t.spawn_init("init").unwrap();
        let kthreadd = t
            .fork(init, "kthreadd", TaskKind::Kernel, ExitSignal::Sigchld)
            .unwrap();
        t.ignore_sigchld(kthreadd);
        let k = t
            .fork(kthreadd, "k", TaskKind::Kernel, ExitSignal::Sigchld)
            .unwrap();
        t.exit(k);
        assert!(t.children(kthreadd).is_empty());
        assert_eq!(t.nr_tasks(), 2);
        t.assert_invariants();
    }

    #[test]
    fn pids_run_out_at_pid_max_and_wrap_to_reserved_pids() {
        // pid_max 8: pids 1..=7 exist; the eighth fork fails with EAGAIN.
        let mut m = PidMap::new(8);
        let got: Vec<Pid> = (0..7).map(|_| m.alloc().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(m.alloc(), Err(TaskError::NoPid { pid_max: 8 }));
        // Free 3 and 7: the search goes on after last_pid (7), wraps to
        // RESERVED_PIDS (clamped to 7 on so small a map), finds 7.
        m.free(3);
        m.free(7);
        assert_eq!(m.alloc(), Ok(7));
        // With the default map, after the top the search restarts at 300.
        let mut m = PidMap::new(PID_MAX_DEFAULT);
        for _ in 0..(PID_MAX_DEFAULT - 1) {
            m.alloc().unwrap();
        }
        m.free(5);
        m.free(400);
        assert_eq!(
            m.alloc(),
            Ok(400),
            "pids below RESERVED_PIDS are skipped after a wrap"
        );
        assert_eq!(scaled_pid_max(16), 32768);
        assert_eq!(scaled_pid_max(4096), 4_194_304);
    }
}
