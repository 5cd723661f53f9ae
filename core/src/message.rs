//! A handler's own error message, formatted without a heap.

use core::fmt;

/// Bytes a [`Message`] keeps; a longer message is cut at a character boundary.
pub const MESSAGE_CAPACITY: usize = 64;

/// A formatted message in a fixed buffer, for [`Error::Message`](crate::Error::Message):
/// `Error::msg(format_args!("unknown command {cmd:?}"))`. It is `Copy`, like
/// the rest of the error, and never allocates; a message longer than
/// [`MESSAGE_CAPACITY`] bytes is cut, at a character boundary, and ends
/// with `…`.
///
/// ```
/// use socketserver_core::Message;
///
/// let m = Message::new(format_args!("bad key {:?}", "zz"));
/// assert_eq!(m.as_str(), "bad key \"zz\"");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Message {
    bytes: [u8; MESSAGE_CAPACITY],
    len: u8,
}

impl Message {
    /// Formats `args` into a new message, cut if too long.
    pub fn new(args: fmt::Arguments<'_>) -> Self {
        let mut message = Self {
            bytes: [0; MESSAGE_CAPACITY],
            len: 0,
        };
        if fmt::write(&mut message, args).is_err() {
            message.mark_cut();
        }
        message
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // `write_str` only ever appends whole characters, so this holds
        // UTF-8; the fallback can never be taken.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// Ends the text with `…` (3 bytes), making room for it at a character boundary.
    fn mark_cut(&mut self) {
        const ELLIPSIS: &str = "…";
        let mut keep = usize::from(self.len).min(MESSAGE_CAPACITY - ELLIPSIS.len());
        while !self.as_str().is_char_boundary(keep) {
            keep -= 1;
        }
        self.bytes[keep..keep + ELLIPSIS.len()].copy_from_slice(ELLIPSIS.as_bytes());
        // Cannot truncate: keep + 3 <= MESSAGE_CAPACITY = 64.
        self.len = u8::try_from(keep + ELLIPSIS.len()).unwrap_or(u8::MAX);
    }
}

impl fmt::Write for Message {
    /// Appends what fits, whole characters only; fails when something did
    /// not fit, which [`Message::new`] turns into the `…` mark.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = usize::from(self.len);
        let room = MESSAGE_CAPACITY - len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[len..len + take].copy_from_slice(&s.as_bytes()[..take]);
        // Cannot truncate: len + take <= MESSAGE_CAPACITY = 64.
        self.len = u8::try_from(len + take).unwrap_or(u8::MAX);
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Message {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_kept_whole() {
        let m = Message::new(format_args!("{} + {} = {}", 1, 2, 3));
        assert_eq!(m.as_str(), "1 + 2 = 3");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary_and_marked() {
        let long = "é".repeat(100); // 2 bytes each
        let m = Message::new(format_args!("{long}"));
        assert!(m.as_str().ends_with('…'));
        assert!(m.as_str().len() <= MESSAGE_CAPACITY);
        assert!(m.as_str().starts_with("éé"));
    }
}
