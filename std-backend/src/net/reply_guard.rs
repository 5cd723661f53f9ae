//! Keeps one Unix datagram peer that never reads from silencing a server.
//!
//! Linux charges every reply queued at a peer to the *server's* send
//! buffer until the peer reads it, and a peer that has `connect`ed to the
//! server is exempt from the receive-queue limit (`max_dgram_qlen`). Such a
//! peer that never reads fills the server's send buffer, and then the
//! replies to every other client fail: a non-blocking send cannot fix that,
//! since the bytes are held at the peer, not here.
//!
//! The guard estimates what each peer holds unread from what the send
//! buffer holds (`SIOCOUTQ`) before and after each reply: growth is charged
//! to the peer just answered; a drop (someone read) is refunded to the most
//! recent replies first, since a peer that reads takes its replies within
//! moments while a peer that never reads keeps its old ones. Once the buffer
//! is half full (not counting what quarantined peers hold), the peer holding
//! most is put in quarantine: its replies are dropped, so it can hold no
//! more, and the rest of the buffer stays for the clients that read.
//! Quarantine ends when the buffer drains (the peer read, or left).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Replies remembered for refunds: a peer that reads is refunded before
/// this many newer replies were sent.
const RECENT: usize = 256;
/// Peers whose holdings are tracked; beyond this the one holding least is forgotten.
const TRACKED: usize = 1024;

/// The guard's state for one server socket.
#[derive(Debug)]
pub(crate) struct ReplyGuard<A> {
    /// Estimated bytes each peer holds unread.
    held: HashMap<A, usize>,
    /// The latest charges, newest last, for refunds.
    recent: VecDeque<(A, usize)>,
    /// What the buffer held at the last observation.
    queued: usize,
    /// Peers whose replies are dropped, with what they hold.
    quarantined: HashMap<A, usize>,
}

impl<A> Default for ReplyGuard<A> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
            recent: VecDeque::new(),
            queued: 0,
            quarantined: HashMap::new(),
        }
    }
}

impl<A: Eq + Hash + Clone> ReplyGuard<A> {
    /// Whether replies to `peer` are being dropped.
    pub(crate) fn is_quarantined(&self, peer: &A) -> bool {
        self.quarantined.contains_key(peer)
    }

    /// Whether the send buffer held more than a trickle at the last look:
    /// only then does a reply need a fresh look before it is sent. While
    /// every peer reads, the look after the last reply stands in for it,
    /// since replies are all that fill the buffer.
    pub(crate) fn is_filling(&self, capacity: usize) -> bool {
        self.queued > capacity / 8
    }

    /// What the send buffer held at the last look.
    pub(crate) fn last_queued(&self) -> usize {
        self.queued
    }

    /// Records a reply of `len` bytes to `peer`, given what the send buffer
    /// held just before (`before`) and just after (`after`) it, of `capacity`.
    pub(crate) fn sent(
        &mut self,
        peer: &A,
        len: usize,
        before: usize,
        after: usize,
        capacity: usize,
    ) {
        self.refund(self.queued.saturating_sub(before));
        if after <= capacity / 8 {
            // Everyone has (nearly) read: a new episode.
            self.held.clear();
            self.recent.clear();
            self.quarantined.clear();
            self.queued = after;
            return;
        }
        let charged = after.saturating_sub(before).max(len);
        self.charge(peer, charged);
        self.queued = after;
        let held_by_quarantined: usize = self.quarantined.values().sum();
        let free_capacity = capacity.saturating_sub(held_by_quarantined);
        if after.saturating_sub(held_by_quarantined) > free_capacity / 2
            && let Some((hog, held)) = self.held.iter().max_by_key(|(_, b)| **b)
        {
            let (hog, held) = (hog.clone(), *held);
            self.held.remove(&hog);
            self.recent.retain(|(p, _)| *p != hog);
            self.quarantined.insert(hog, held);
        }
    }

    fn charge(&mut self, peer: &A, bytes: usize) {
        if self.held.len() >= TRACKED
            && !self.held.contains_key(peer)
            && let Some(least) = self
                .held
                .iter()
                .min_by_key(|(_, b)| **b)
                .map(|(a, _)| a.clone())
        {
            self.held.remove(&least);
        }
        *self.held.entry(peer.clone()).or_default() += bytes;
        self.recent.push_back((peer.clone(), bytes));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// Takes `drained` bytes off the holdings, newest replies first.
    fn refund(&mut self, mut drained: usize) {
        while drained > 0 {
            let Some((peer, bytes)) = self.recent.pop_back() else {
                return;
            };
            let back = bytes.min(drained);
            drained -= back;
            if let Some(held) = self.held.get_mut(&peer) {
                *held = held.saturating_sub(back);
            }
            if back < bytes {
                self.recent.push_back((peer, bytes - back));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 200_000;

    /// A buffer shared by a hog that never reads and readers that read
    /// each reply before the next is sent.
    struct Buffer {
        guard: ReplyGuard<&'static str>,
        hog_holds: usize,
    }

    impl Buffer {
        fn reply(&mut self, peer: &'static str, len: usize) -> bool {
            if self.guard.is_quarantined(&peer) {
                return false;
            }
            let before = self.hog_holds;
            let after = before + len;
            self.guard.sent(&peer, len, before, after, CAP);
            if peer == "hog" {
                self.hog_holds += len;
            }
            true
        }
    }

    #[test]
    fn a_busy_reader_is_never_quarantined_and_the_hog_is() {
        let mut buffer = Buffer {
            guard: ReplyGuard::default(),
            hog_holds: 0,
        };
        for _ in 0..40 {
            buffer.reply("hog", 8_000);
            for _ in 0..100 {
                assert!(buffer.reply("reader", 768), "the reader was quarantined");
            }
        }
        assert!(buffer.guard.is_quarantined(&"hog"));
        assert!(buffer.hog_holds <= CAP / 2 + 8_000, "{}", buffer.hog_holds);
    }

    #[test]
    fn the_episode_ends_when_the_buffer_drains() {
        let mut guard = ReplyGuard::default();
        guard.sent(&"hog", 8_000, 0, 110_000, CAP);
        assert!(guard.is_quarantined(&"hog"));
        // The hog read everything: the buffer is nearly empty again.
        guard.sent(&"reader", 600, 0, 600, CAP);
        assert!(!guard.is_quarantined(&"hog"));
    }
}
