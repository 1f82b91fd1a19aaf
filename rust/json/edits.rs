//! Random one-byte edits of JSON texts, for the tests that check the scanner against serde:
//! a fixed-seed generator, so a failing edit repeats on every run.

pub struct OneByteEdits {
    state: u64,
}

impl OneByteEdits {
    pub fn new() -> Self {
        Self {
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A number below `n` (a 64-bit linear congruential generator; plenty for tests).
    fn below(&mut self, n: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) as usize % n
    }

    /// `text` with one byte replaced by a byte of `alphabet`, one inserted, or one removed.
    pub fn edit(&mut self, text: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut bytes = text.to_vec();
        let at = self.below(bytes.len());
        match self.below(3) {
            0 => bytes[at] = alphabet[self.below(alphabet.len())],
            1 => bytes.insert(at, alphabet[self.below(alphabet.len())]),
            _ => {
                bytes.remove(at);
            }
        }
        bytes
    }
}
