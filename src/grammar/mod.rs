//! The grammar of time-named files, as values: [`Cadence`] is how often a file comes (and the
//! slots it comes in); [`Pattern`] is a name grammar, checked once so that every name it
//! formats parses back to the same stream and slot. Vocabulary, not a feed: the store reads a
//! declared feed's names with it (`store::feeds`), and `feed` builds whole declarations on it.

pub mod cadence;
pub mod pattern;

pub use cadence::Cadence;
pub use pattern::{Parsed, Pattern, PatternError};
