//! Keeps one Unix datagram peer that never reads from silencing a server.
//!
//! Linux charges every reply queued at a peer to the *server's* send
//! buffer until the peer reads it, and a peer that has `connect`ed to the
//! server is exempt from the receive-queue limit (`max_dgram_qlen`). Such a
//! peer that never reads fills the server's send buffer, and then the
//! replies to every other client fail: a non-blocking send cannot fix that,
//! since the bytes are held at the peer, not here.
//!
//! The guard watches what the send buffer holds (`SIOCOUTQ`). While it is
//! above half the buffer, the peer that received the most since the buffer
//! was last nearly empty is put in quarantine: its replies are dropped, so it
//! can hold no more, and the other half of the buffer stays for the clients
//! that read. Quarantine ends when the buffer drains (the peer read, or left).

use std::collections::HashMap;
use std::hash::Hash;

/// Peers tracked at once; beyond this the one that received least is forgotten.
const TRACKED: usize = 1024;

/// The guard's state for one server socket.
#[derive(Debug)]
pub(crate) struct ReplyGuard<A> {
    /// Bytes charged for replies to each peer since the buffer was last
    /// nearly empty; quarantined peers never read them.
    charged: HashMap<A, usize>,
    quarantined: HashMap<A, usize>,
    /// What the send buffer held after the last reply.
    queued: usize,
}

impl<A> Default for ReplyGuard<A> {
    fn default() -> Self {
        Self {
            charged: HashMap::new(),
            quarantined: HashMap::new(),
            queued: 0,
        }
    }
}

impl<A: Eq + Hash + Clone> ReplyGuard<A> {
    /// Whether replies to `peer` are being dropped.
    pub(crate) fn is_quarantined(&self, peer: &A) -> bool {
        self.quarantined.contains_key(peer)
    }

    /// Whether the send buffer held more than a trickle after the last
    /// reply: only then does the next reply need its exact charge (what the
    /// buffer holds before and after it). While every peer reads, one look
    /// after each reply is enough, since replies are all that fill it.
    pub(crate) fn is_filling(&self, capacity: usize) -> bool {
        !nearly_empty(self.queued, capacity)
    }

    /// What the send buffer held after the last reply: a reply sent when
    /// the buffer was [not filling](Self::is_filling) charged at least what
    /// it holds now minus this.
    pub(crate) fn last_queued(&self) -> usize {
        self.queued
    }

    /// Records a reply to `peer` that charged `bytes`, given what the send
    /// buffer now holds (`queued`) of its `capacity`.
    pub(crate) fn sent(&mut self, peer: &A, bytes: usize, queued: usize, capacity: usize) {
        self.queued = queued;
        if nearly_empty(queued, capacity) {
            // Everyone has read: a new episode.
            self.charged.clear();
            self.quarantined.clear();
            return;
        }
        if self.charged.len() >= TRACKED
            && !self.charged.contains_key(peer)
            && let Some(least) = self.least_charged()
        {
            self.charged.remove(&least);
        }
        *self.charged.entry(peer.clone()).or_default() += bytes;
        let held_by_quarantined: usize = self.quarantined.values().sum();
        let free_capacity = capacity.saturating_sub(held_by_quarantined);
        if queued.saturating_sub(held_by_quarantined) > free_capacity / 2
            && let Some((hog, held)) = self.charged.iter().max_by_key(|(_, b)| **b)
        {
            let (hog, held) = (hog.clone(), *held);
            self.charged.remove(&hog);
            self.quarantined.insert(hog, held);
        }
    }

    fn least_charged(&self) -> Option<A> {
        self.charged
            .iter()
            .min_by_key(|(_, b)| **b)
            .map(|(a, _)| a.clone())
    }
}

/// At most an eighth of the buffer: everyone has read (nearly) all.
fn nearly_empty(queued: usize, capacity: usize) -> bool {
    queued <= capacity / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 200_000;

    #[test]
    fn the_peer_that_holds_most_is_quarantined_and_readers_are_not() {
        let mut guard = ReplyGuard::default();
        let mut queued = 0;
        // The hog never reads; "reader" reads each reply at once.
        for _ in 0..20 {
            queued += 8_000;
            guard.sent(&"hog", 8_000, queued, CAP);
            guard.sent(&"reader", 600, queued + 600, CAP);
            if guard.is_quarantined(&"hog") {
                break;
            }
        }
        assert!(guard.is_quarantined(&"hog"));
        assert!(!guard.is_quarantined(&"reader"));
        // Readers go on being served while the hog holds its bytes.
        for _ in 0..10_000 {
            guard.sent(&"reader", 600, queued + 600, CAP);
        }
        assert!(!guard.is_quarantined(&"reader"));
        // The hog reads (or leaves): the buffer drains, the episode ends.
        guard.sent(&"reader", 600, 600, CAP);
        assert!(!guard.is_quarantined(&"hog"));
    }
}
