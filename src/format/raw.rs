//! Keeps the bytes the JSON reader consumed, so an embedded array or object can be taken as it
//! was written (exact text, whitespace and all) rather than re-serialized.
//!
//! The reader buffers ahead of its position by at most [`LOOKBEHIND`] bytes; the recorder keeps at
//! least that many of the latest bytes, and every byte from a mark while one is set.

use std::io::{self, Read};

/// Bytes kept behind the newest read: more than struson's read-ahead buffer (1 KiB).
const LOOKBEHIND: usize = 8 << 10;
/// Dropping old bytes waits until this many are held, so it costs little per byte.
const COMPACT_AT: usize = 64 << 10;

/// A reader that remembers what passed through it (see the module doc).
pub struct Recorder<R> {
    inner: R,
    /// The latest bytes read; `kept[0]` is at stream offset `kept_from`.
    kept: Vec<u8>,
    kept_from: u64,
    /// While set, nothing from this offset on is dropped.
    mark: Option<u64>,
}

impl<R> Recorder<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Recorder<R> {
        Recorder {
            inner,
            kept: Vec::with_capacity(COMPACT_AT + LOOKBEHIND),
            kept_from: 0,
            mark: None,
        }
    }

    /// Keeps every byte from stream offset `from` until [`Recorder::take_marked`].
    pub fn mark(&mut self, from: u64) {
        self.mark = Some(from);
    }

    /// Appends the bytes between stream offsets `from` (the mark) and `to` to `out`, and drops
    /// the mark. `None` when they are no longer held (a caller's mistake, reported as an error).
    pub fn take_marked(&mut self, from: u64, to: u64, out: &mut Vec<u8>) -> Option<()> {
        self.mark = None;
        let start = usize::try_from(from.checked_sub(self.kept_from)?).ok()?;
        let end = usize::try_from(to.checked_sub(self.kept_from)?).ok()?;
        out.extend_from_slice(self.kept.get(start..end)?);
        Some(())
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if self.kept.len() + read > COMPACT_AT && self.mark.is_none() {
            let drop = self.kept.len().saturating_sub(LOOKBEHIND);
            self.kept.drain(..drop);
            self.kept_from += drop as u64;
        }
        self.kept.extend_from_slice(&buf[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_marked_ranges_across_compactions() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut recorder = Recorder::new(&data[..]);
        let mut buf = [0u8; 1000];
        let mut offset = 0u64;
        let mut out = Vec::new();
        // Mark 500 bytes behind the newest read, keep it across 300 reads, then take it.
        for round in 0..1000u64 {
            if round == 400 {
                recorder.mark(offset - 500);
            }
            offset += recorder.read(&mut buf).unwrap() as u64;
        }
        let from = 400 * 1000 - 500;
        recorder.take_marked(from, offset, &mut out).unwrap();
        assert_eq!(out, &data[from as usize..offset as usize]);
        // Without a mark, old bytes go and a late request fails rather than lying.
        for _ in 0..100 {
            assert_eq!(recorder.read(&mut buf).unwrap(), 0);
        }
        assert!(recorder.take_marked(0, 10, &mut Vec::new()).is_none());
    }
}
