//! The symbol table of a head: every distinct label name and value is stored
//! once and referred to by a `u32` id, in series and in postings alike.
//!
//! Ids are reference counted by the series that use them and recycled when
//! the last such series is truncated away.

use std::collections::HashMap;
use std::sync::Arc;

/// An interned string id.
pub(crate) type Sym = u32;

/// Estimated bytes per symbol besides its text: the `Arc` header, the map
/// entry (key, id, control byte, load-factor slack) and the id-table slot.
const SYMBOL_OVERHEAD: usize = 16 + 32 + 24;

#[derive(Default)]
pub(crate) struct Symbols {
    ids: HashMap<Arc<str>, Sym>,
    /// `strings[id]`, `None` once freed.
    strings: Vec<Option<Arc<str>>>,
    refs: Vec<u32>,
    free: Vec<Sym>,
    bytes: usize,
}

impl Symbols {
    /// The id of `s`, interning it if new; adds one reference.
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            self.refs[id as usize] += 1;
            return id;
        }
        let a: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strings[id as usize] = Some(Arc::clone(&a));
                self.refs[id as usize] = 1;
                id
            }
            None => {
                let id = Sym::try_from(self.strings.len())
                    .expect("fewer than 2^32 distinct label strings in one head");
                self.strings.push(Some(Arc::clone(&a)));
                self.refs.push(1);
                id
            }
        };
        self.bytes += s.len() + SYMBOL_OVERHEAD;
        self.ids.insert(a, id);
        id
    }

    /// Drops one reference; the last one frees the id.
    pub(crate) fn release(&mut self, id: Sym) {
        let Some(r) = self.refs.get_mut(id as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0
            && let Some(s) = self.strings[id as usize].take()
        {
            self.bytes -= s.len() + SYMBOL_OVERHEAD;
            self.ids.remove(&s);
            self.free.push(id);
        }
    }

    /// The id of `s` if interned, without adding a reference.
    pub(crate) fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// The string of a live id (empty for a freed or unknown id, which the
    /// head never holds).
    pub(crate) fn get(&self, id: Sym) -> &str {
        self.strings
            .get(id as usize)
            .and_then(|s| s.as_deref())
            .unwrap_or("")
    }

    /// Estimated heap bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_refcounted_and_ids_are_recycled() {
        let mut s = Symbols::default();
        let a = s.intern("job");
        assert_eq!(s.intern("job"), a);
        let b = s.intern("node");
        assert_ne!(a, b);
        assert_eq!(s.get(a), "job");
        s.release(a);
        assert_eq!(s.lookup("job"), Some(a), "one reference left");
        s.release(a);
        assert_eq!(s.lookup("job"), None);
        assert_eq!(s.len(), 1);
        let c = s.intern("other");
        assert_eq!(c, a, "freed id reused");
        assert_eq!(s.get(c), "other");
    }
}
