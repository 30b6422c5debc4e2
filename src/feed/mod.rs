//! Feeds: a time-named file feed is declared by a name pattern and a cadence, as values.
//! [`Cadence`] is how often a file comes (and the slots it comes in).

pub mod cadence;

pub use cadence::Cadence;
