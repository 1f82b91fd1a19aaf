//! Stop strings: the answer ends where the first stop string starts, and the stop string itself
//! is not shown (OpenAI's semantics; TGI-style servers leave it in the text).
//!
//! Text arrives in pieces, so the tail of what came so far may be the start of a stop string
//! that the next piece completes. Only that tail is held back; everything before it is released
//! at once. "First" means the earliest position in the whole text: a complete match is not acted
//! on while an earlier position could still turn into a (longer) stop string, so the result does
//! not depend on how the text was split.

use memchr::memmem;

pub struct StopFilter {
    stops: Vec<String>,
    /// The tail that may still be (or precede) a stop string, not yet released.
    held: String,
    /// Bytes pushed so far (including ignored ones after a match).
    pushed: u64,
    /// Bytes released so far; after a match, where the answer was cut.
    released: u64,
    matched: bool,
}

/// What to do with the text seen so far.
enum Decision {
    /// A stop string starts here: release what is before it, drop the rest.
    Cut(usize),
    /// Release what is before this position, hold the rest.
    HoldFrom(usize),
}

impl StopFilter {
    /// `stops` must not contain empty strings (checked by the caller's options).
    pub fn new(stops: Vec<String>) -> Self {
        StopFilter {
            stops,
            held: String::new(),
            pushed: 0,
            released: 0,
            matched: false,
        }
    }

    /// Bytes pushed so far: where the next piece starts in the whole text.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Bytes released so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Where the answer was cut, once a stop string matched.
    pub fn cut(&self) -> Option<u64> {
        self.matched.then_some(self.released)
    }

    /// Takes the next piece of text; passes what can no longer be part of a stop string to
    /// `next`. Text after a match is ignored.
    pub fn push(&mut self, text: &str, next: &mut impl FnMut(&str)) {
        self.pushed += text.len() as u64;
        if self.matched || text.is_empty() {
            return;
        }
        if self.stops.is_empty() {
            self.release(text, next);
            return;
        }
        if self.held.is_empty() {
            // The usual case: nothing held, decide on the borrowed piece.
            let decision = self.decide(text);
            self.apply(text, decision, next);
            return;
        }
        let mut work = std::mem::take(&mut self.held);
        work.push_str(text);
        let decision = self.decide(&work);
        self.apply(&work, decision, next);
        if self.held.is_empty() {
            work.clear();
            self.held = work; // keep the buffer
        }
    }

    /// No more text: what was held cannot become a stop string any more.
    pub fn finish(&mut self, next: &mut impl FnMut(&str)) {
        if self.matched || self.held.is_empty() {
            return;
        }
        let work = std::mem::take(&mut self.held);
        match self.earliest_match(&work) {
            Some(at) => self.apply(&work, Decision::Cut(at), next),
            None => self.release(&work, next),
        }
    }

    fn release(&mut self, text: &str, next: &mut impl FnMut(&str)) {
        if !text.is_empty() {
            self.released += text.len() as u64;
            next(text);
        }
    }

    fn apply(&mut self, work: &str, decision: Decision, next: &mut impl FnMut(&str)) {
        match decision {
            Decision::Cut(at) => {
                self.release(&work[..at], next);
                self.matched = true;
                self.held.clear();
            }
            Decision::HoldFrom(at) => {
                self.release(&work[..at], next);
                self.held.push_str(&work[at..]);
            }
        }
    }

    fn decide(&self, work: &str) -> Decision {
        let open = self.earliest_open(work);
        match self.earliest_match(work) {
            Some(at) if open.is_none_or(|open| open >= at) => Decision::Cut(at),
            _ => Decision::HoldFrom(open.unwrap_or(work.len())),
        }
    }

    /// The earliest position where a whole stop string occurs.
    fn earliest_match(&self, work: &str) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|stop| memmem::find(work.as_bytes(), stop.as_bytes()))
            .min()
    }

    /// The earliest position from which the rest of `work` is a proper prefix of a stop string
    /// (so more text could complete it). Such a position is always a character boundary: a stop
    /// string never starts with a UTF-8 continuation byte.
    fn earliest_open(&self, work: &str) -> Option<usize> {
        let bytes = work.as_bytes();
        self.stops
            .iter()
            .filter_map(|stop| {
                let stop = stop.as_bytes();
                let from = bytes.len().saturating_sub(stop.len() - 1);
                (from..bytes.len()).find(|&at| stop.starts_with(&bytes[at..]))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<u64>) {
        let mut filter = StopFilter::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for piece in pieces {
            filter.push(piece, &mut |t| out.push_str(t));
        }
        filter.finish(&mut |t| out.push_str(t));
        assert_eq!(filter.released(), out.len() as u64);
        (out, filter.cut())
    }

    /// Every split of `text` into pieces at char boundaries (two-way and char by char) must give
    /// the same answer.
    fn every_split(stops: &[&str], text: &str) -> (String, Option<u64>) {
        let whole = run(stops, &[text]);
        for (at, _) in text.char_indices() {
            assert_eq!(
                run(stops, &[&text[..at], &text[at..]]),
                whole,
                "split at {at}"
            );
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(stops, &pieces), whole, "char by char");
        whole
    }

    #[test]
    fn text_is_cut_before_the_stop_string() {
        assert_eq!(
            every_split(&["<|eot_id|>"], "Hello!<|eot_id|>ignored"),
            ("Hello!".into(), Some(6))
        );
        assert_eq!(
            every_split(&["\n\n"], "a\nb\n\nc"),
            ("a\nb".into(), Some(3))
        );
    }

    #[test]
    fn the_earliest_stop_wins_even_when_a_later_one_completes_first() {
        // "bc" completes before "abcd" could, but "abcd" starts earlier.
        assert_eq!(every_split(&["bc", "abcd"], "xabcd"), ("x".into(), Some(1)));
        assert_eq!(
            every_split(&["bc", "abcd"], "xabcx"),
            ("xa".into(), Some(2))
        );
        assert_eq!(every_split(&["abcd", "bc"], "xabc"), ("xa".into(), Some(2)));
    }

    #[test]
    fn a_partial_stop_string_is_released_when_it_cannot_match() {
        assert_eq!(
            every_split(&["</s>"], "a</b> </s"),
            ("a</b> </s".into(), None)
        );
        let mut filter = StopFilter::new(vec!["</s>".into()]);
        let mut out = String::new();
        filter.push("x</", &mut |t| out.push_str(t));
        assert_eq!(out, "x", "only the possible start of a stop string is held");
        filter.push("b", &mut |t| out.push_str(t));
        assert_eq!(out, "x</b");
    }

    #[test]
    fn multibyte_stop_strings_and_text() {
        let stop = "<｜end▁of▁sentence｜>";
        assert_eq!(
            every_split(&[stop], "Grüße 😀<｜end▁of▁sentence｜>x"),
            ("Grüße 😀".into(), Some(12))
        );
        assert_eq!(every_split(&[stop], "é<｜end▁"), ("é<｜end▁".into(), None));
    }

    #[test]
    fn no_stops_passes_everything_through() {
        assert_eq!(every_split(&[], "abc"), ("abc".into(), None));
    }

    #[test]
    fn text_after_a_match_is_ignored_but_counted() {
        let mut filter = StopFilter::new(vec!["STOP".into()]);
        let mut out = String::new();
        filter.push("aSTOPb", &mut |t| out.push_str(t));
        filter.push("more", &mut |t| out.push_str(t));
        filter.finish(&mut |t| out.push_str(t));
        assert_eq!(out, "a");
        assert_eq!(filter.pushed(), 10);
        assert_eq!(filter.cut(), Some(1));
    }
}
