//! Intrusive doubly-linked lists over an arena of nodes: the one data
//! structure under every textbook policy.
//!
//! ```text
//!   arena:  [ node0 | node1 | node2 | ... ]      node = { key, size, prev, next, list, bits }
//!   list:   head -> n2 <-> n0 <-> n5 <- tail    (indices into the arena; NIL ends)
//! ```
//!
//! Nodes are addressed by `u32` index, so a node is 24 bytes and moving one
//! (to the head on a hit, to a ghost list on eviction) is a few stores, with
//! no allocation. Freed nodes are reused through a free stack.
//!
//! Invariants (checked by [`Arena::check_list`]): following `next` from
//! `head` visits exactly `len` nodes whose `list` is this list's id, ends
//! at `tail`, `prev` mirrors `next`, and their sizes sum to `bytes`.

/// The end of a list.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) key: u64,
    pub(crate) size: u32,
    prev: u32,
    next: u32,
    /// Which list the node is on (policy-defined), or `FREE`.
    pub(crate) list: u8,
    /// Policy-defined bits (CLOCK's reference counter).
    pub(crate) bits: u8,
}

const FREE: u8 = u8::MAX;

/// One list: its ends, length and bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    pub(crate) id: u8,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: usize,
    pub(crate) bytes: u64,
}

impl List {
    pub(crate) fn new(id: u8) -> Self {
        List {
            id,
            head: NIL,
            tail: NIL,
            len: 0,
            bytes: 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
    free: Vec<u32>,
}

impl Arena {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Arena {
            nodes: Vec::with_capacity(n),
            free: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    #[inline]
    pub(crate) fn node_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    /// A new node, not on any list.
    #[inline]
    pub(crate) fn alloc(&mut self, key: u64, size: u32) -> u32 {
        let node = Node {
            key,
            size,
            prev: NIL,
            next: NIL,
            list: FREE,
            bits: 0,
        };
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            let i = u32::try_from(self.nodes.len()).expect("fewer than 2^32 cached objects");
            self.nodes.push(node);
            i
        }
    }

    /// Returns a node (already unlinked) to the free stack.
    #[inline]
    pub(crate) fn release(&mut self, i: u32) {
        debug_assert_eq!(self.nodes[i as usize].list, FREE);
        self.free.push(i);
    }

    #[inline]
    pub(crate) fn push_front(&mut self, list: &mut List, i: u32) {
        let old = list.head;
        {
            let n = &mut self.nodes[i as usize];
            debug_assert_eq!(n.list, FREE, "node already on a list");
            n.prev = NIL;
            n.next = old;
            n.list = list.id;
            list.bytes += u64::from(n.size);
        }
        if old == NIL {
            list.tail = i;
        } else {
            self.nodes[old as usize].prev = i;
        }
        list.head = i;
        list.len += 1;
    }

    #[inline]
    pub(crate) fn unlink(&mut self, list: &mut List, i: u32) {
        let (prev, next, size) = {
            let n = &mut self.nodes[i as usize];
            debug_assert_eq!(n.list, list.id, "node on another list");
            n.list = FREE;
            (n.prev, n.next, n.size)
        };
        if prev == NIL {
            list.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        list.len -= 1;
        list.bytes -= u64::from(size);
    }

    /// Moves a node of `list` to its head.
    #[inline]
    pub(crate) fn move_to_front(&mut self, list: &mut List, i: u32) {
        if list.head != i {
            self.unlink(list, i);
            self.push_front(list, i);
        }
    }

    /// Unlinks and returns the tail of `list`.
    #[inline]
    pub(crate) fn pop_back(&mut self, list: &mut List) -> Option<u32> {
        let t = list.tail;
        if t == NIL {
            None
        } else {
            self.unlink(list, t);
            Some(t)
        }
    }

    /// Keys of `list` from head to tail.
    pub(crate) fn keys(&self, list: &List) -> Vec<u64> {
        let mut out = Vec::with_capacity(list.len);
        let mut i = list.head;
        while i != NIL {
            out.push(self.nodes[i as usize].key);
            i = self.nodes[i as usize].next;
        }
        out
    }

    /// Checks the list invariants of the module header.
    pub(crate) fn check_list(&self, list: &List) {
        let mut i = list.head;
        let mut prev = NIL;
        let mut n = 0;
        let mut bytes = 0;
        while i != NIL {
            let node = &self.nodes[i as usize];
            assert_eq!(
                node.list, list.id,
                "node {i} on list {} found on {}",
                node.list, list.id
            );
            assert_eq!(node.prev, prev, "prev link of node {i}");
            bytes += u64::from(node.size);
            n += 1;
            assert!(
                n <= list.len,
                "list {} longer than its len {}",
                list.id,
                list.len
            );
            prev = i;
            i = node.next;
        }
        assert_eq!(prev, list.tail, "tail of list {}", list.id);
        assert_eq!(n, list.len, "len of list {}", list.id);
        assert_eq!(bytes, list.bytes, "bytes of list {}", list.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_move_pop_keep_order_and_counts() {
        let mut a = Arena::with_capacity(4);
        let mut l = List::new(0);
        let ids: Vec<u32> = (0..4).map(|k| a.alloc(k, 10 + k as u32)).collect();
        for &i in &ids {
            a.push_front(&mut l, i);
        }
        assert_eq!(a.keys(&l), vec![3, 2, 1, 0]);
        a.move_to_front(&mut l, ids[1]);
        assert_eq!(a.keys(&l), vec![1, 3, 2, 0]);
        assert_eq!(l.bytes, 10 + 11 + 12 + 13);
        assert_eq!(a.pop_back(&mut l), Some(ids[0]));
        a.release(ids[0]);
        a.check_list(&l);
        assert_eq!((l.len, l.bytes), (3, 11 + 12 + 13));
        // The freed node is reused.
        assert_eq!(a.alloc(9, 1), ids[0]);
    }
}
