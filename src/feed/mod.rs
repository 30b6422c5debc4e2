//! Feeds: a time-named file feed is declared by a name pattern and a cadence, as values.
//! [`Cadence`] is how often a file comes (and the slots it comes in); [`Pattern`] is the name
//! grammar, checked once so that every name it formats parses back to the same slot.

pub mod cadence;
pub mod pattern;

pub use cadence::Cadence;
pub use pattern::{Pattern, PatternError};
