//! Running code at a stack depth drawn afresh each time.
//!
//! Where a thread's stack sits relative to the heap modulo the 4 KiB page
//! changes how fast the same code runs (4K aliasing, cache-set conflicts),
//! and that position is drawn once per process for the main thread and fixed
//! per build for a spawned one (its stack starts at the same offset within a
//! page every time), so one build can run its jobs measurably slower or
//! faster than the caller's from the stack's position alone
//! (docs/methodology.md has the measurement). Moving the stack down by a
//! fresh random multiple of 16 bytes (under 4 KiB) each time turns that
//! fixed bias into noise that averages out.

/// Draws stack offsets: xorshift64, seeded from the clock.
pub struct StackShift {
    state: u64,
}

impl Default for StackShift {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self { state: seed | 1 }
    }
}

impl StackShift {
    /// Runs `f` with the stack moved down by a newly drawn offset.
    #[inline]
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        // xorshift64: uniform enough for picking one of 256 offsets.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let offset = 16 * (1 + (self.state >> 32) as usize % 256);
        alloca::with_alloca(offset, |pad| {
            std::hint::black_box(pad.as_ptr());
            f()
        })
    }
}
