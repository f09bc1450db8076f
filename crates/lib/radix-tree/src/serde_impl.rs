//! Serialization of a tree (feature `serde`): the entries in index order
//! with their tag bits, the node budget and the preload reserve.
//!
//! A tree's shape is a function of its keys: the height is the least that
//! covers the largest index (the documented rule of [`RadixTree::height`]),
//! and nodes exist exactly on paths to entries (deletion frees empty nodes
//! and shrinks the root). So entries and tags are a complete description:
//! deserializing inserts them into an empty tree and gets the same nodes,
//! and checks that it got the same height. Tag bits of interior nodes are
//! the OR of their children's, which `tag_set` rebuilds.
//!
//! Deserializing untrusted data fails, never panics: indices must be
//! strictly increasing, values at most [`VALUE_MAX`](crate::VALUE_MAX),
//! tags only on entries, and the recorded height must match.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::entry::{Entry, MAX_TAGS, Tag};
use crate::tree::RadixTree;

/// One slot: an item or a value.
#[derive(Serialize, Deserialize)]
enum SlotImage<T> {
    I(T),
    V(u64),
}

#[derive(Serialize, Deserialize)]
struct TreeImage<T> {
    shift: u32,
    height: u32,
    /// `(index, entry, tag bits)`, strictly increasing indices.
    entries: Vec<(u64, SlotImage<T>, u8)>,
    limit: Option<usize>,
    preloaded: usize,
    pool_capacity: usize,
}

impl<T: Serialize + Clone, const SHIFT: u32> Serialize for RadixTree<T, SHIFT> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self
            .iter()
            .map(|(i, e)| {
                let tags = Tag::ALL
                    .iter()
                    .filter(|t| self.tag_get(i, **t))
                    .fold(0u8, |b, t| b | 1 << t.index());
                let slot = match e {
                    Entry::Item(t) => SlotImage::I(t.clone()),
                    Entry::Value(v) => SlotImage::V(v),
                };
                (i, slot, tags)
            })
            .collect();
        TreeImage {
            shift: SHIFT,
            height: self.height,
            entries,
            limit: self.alloc.limit(),
            preloaded: self.alloc.pool.len(),
            pool_capacity: self.alloc.pool.capacity(),
        }
        .serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const SHIFT: u32> Deserialize<'de> for RadixTree<T, SHIFT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let img = TreeImage::<T>::deserialize(d)?;
        if img.shift != SHIFT {
            return Err(D::Error::custom(format!(
                "radix tree of map shift {}, expected {SHIFT}",
                img.shift
            )));
        }
        if img.preloaded > Self::PRELOAD_SIZE || img.pool_capacity > Self::PRELOAD_SIZE {
            return Err(D::Error::custom(format!(
                "preload reserve of {} nodes (capacity {}), at most {}",
                img.preloaded,
                img.pool_capacity,
                Self::PRELOAD_SIZE
            )));
        }
        let mut t = RadixTree::<T, SHIFT>::new();
        let mut last = None;
        for (i, slot, tags) in img.entries {
            if last.is_some_and(|l| l >= i) {
                return Err(D::Error::custom(format!(
                    "radix tree entry at index {i} after index {}",
                    last.unwrap_or(0)
                )));
            }
            last = Some(i);
            let e = match slot {
                SlotImage::I(x) => Entry::Item(x),
                SlotImage::V(v) => Entry::Value(v),
            };
            t.insert_entry(i, e)
                .map_err(|e| D::Error::custom(format!("radix tree index {i}: {}", e.error)))?;
            if tags >> MAX_TAGS != 0 {
                return Err(D::Error::custom(format!(
                    "radix tree index {i}: tag bits {tags:#b} beyond {MAX_TAGS} tags"
                )));
            }
            for tag in Tag::ALL {
                if tags & 1 << tag.index() != 0 {
                    t.tag_set(i, tag)
                        .map_err(|e| D::Error::custom(format!("radix tree index {i}: tag: {e}")))?;
                }
            }
        }
        if t.height != img.height {
            return Err(D::Error::custom(format!(
                "radix tree height {} recorded, {} for its entries",
                img.height, t.height
            )));
        }
        if img.pool_capacity > 0 {
            t.alloc.pool.reserve_exact(img.pool_capacity);
        }
        for _ in 0..img.preloaded {
            t.alloc.pool.push(crate::node::OwnedNode::new_boxed(0));
        }
        t.set_node_limit(img.limit);
        Ok(t)
    }
}

// Not under Miri (safe code).
#[cfg(all(test, not(miri)))]
mod tests {
    use crate::{Entry, RadixTree, Tag};

    fn roundtrip(t: &RadixTree<u32>) -> RadixTree<u32> {
        let mut buf = Vec::new();
        ciborium::into_writer(t, &mut buf).unwrap();
        ciborium::from_reader(buf.as_slice()).unwrap()
    }

    #[test]
    fn a_tree_comes_back_with_the_same_entries_tags_nodes_and_height() {
        let mut t = RadixTree::<u32>::new();
        for i in [0u64, 5, 63, 64, 4095, 1 << 20, 1 << 40] {
            t.insert(i, i as u32).unwrap();
        }
        t.insert_value(7, 99).unwrap();
        t.tag_set(5, Tag::T0).unwrap();
        t.tag_set(1 << 20, Tag::T2).unwrap();
        // Delete the largest key: the height shrinks, nodes are freed.
        t.delete(1 << 40);
        let u = roundtrip(&t);
        u.assert_invariants();
        assert_eq!(
            (u.height(), u.nodes(), u.memory()),
            (t.height(), t.nodes(), t.memory())
        );
        assert_eq!(u.lookup(7), Some(Entry::Value(99)));
        assert!(u.tag_get(5, Tag::T0) && u.tag_get(1 << 20, Tag::T2) && !u.tag_get(0, Tag::T0));
        assert_eq!(
            u.iter().map(|(i, e)| (i, e.cloned())).collect::<Vec<_>>(),
            t.iter().map(|(i, e)| (i, e.cloned())).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_images_are_refused() {
        #[derive(serde::Serialize)]
        struct Img {
            shift: u32,
            height: u32,
            entries: Vec<(u64, (), u8)>,
        }
        let mut buf = Vec::new();
        ciborium::into_writer(
            &Img {
                shift: 5,
                height: 0,
                entries: vec![],
            },
            &mut buf,
        )
        .unwrap();
        assert!(ciborium::from_reader::<RadixTree<u32>, _>(buf.as_slice()).is_err());
        let mut t = RadixTree::<u32>::new();
        t.insert(3, 1).unwrap();
        let mut buf = Vec::new();
        ciborium::into_writer(&t, &mut buf).unwrap();
        // Corrupt the recorded height (the second field): 0 -> 2... found by
        // flipping the byte after the "height" key.
        let pos = buf.windows(6).position(|w| w == b"height").unwrap() + 6;
        buf[pos] = 2;
        let err = ciborium::from_reader::<RadixTree<u32>, _>(buf.as_slice())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("height 2 recorded, 1 for its entries"),
            "{err}"
        );
    }
}
