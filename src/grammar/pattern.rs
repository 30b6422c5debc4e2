//! A feed's file-name pattern: literal text with the placeholders `{stream}`, `{YYYY}`, `{MM}`,
//! `{DD}`, `{HH}` and `{mi}`, checked once when the feed is declared so that every name it
//! formats parses back to the same stream and slot, and no name it accepts is a path, a hidden
//! file or one of Bronze's own files. The seed's grammars in [`crate::naming`] are two such
//! patterns: `{DD}.{MM}.{YYYY} {HH}{mi}_{stream}_received.json` every 1m and
//! `Pred_{YYYY}-{MM}-{DD}.csv` every 1d; names parse as strictly as there.

use super::cadence::{Cadence, TimeField};
use crate::naming::{check_apartment, is_kept_aside, reject_path_like, NameError};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::fmt::{self, Write as _};

const STREAM: &str = "{stream}";
/// Characters Windows refuses in file names (`/` and `\` are refused as separators before).
const WINDOWS_RESERVED: &[char] = &[':', '<', '>', '"', '|', '?', '*'];
/// How `bronze::layout` names a kept-aside copy, `#` standing for any hex digit
/// (`layout::kept_rel`: `NAME.kept-<16 hex>`), and a staged copy's ending (`layout::temp_rel`).
/// Pinned to the layout by the test `reserved_endings_are_the_layouts_own`.
const KEPT_ENDING: &str = ".kept-################";
const TEMP_ENDING: &str = ".ingest-tmp";
/// The longest stream value (`naming::check_apartment`, `config::check_stream_name`).
const MAX_STREAM_LEN: usize = 64;

/// A checked name pattern and the cadence its names are on. `{` and `}` only open and close
/// placeholders (there is no escape: no data name needs a brace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    cadence: Cadence,
    /// Never two literals in a row, never an empty literal, each placeholder at most once.
    pieces: Vec<Piece>,
    /// Where `{stream}` is in `pieces`.
    stream_at: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Stream,
    Time(TimeField),
}

/// What a name of a feed says: its stream (iff the pattern has `{stream}`) and its slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parsed {
    pub stream: Option<String>,
    /// Naive local start of the slot, always on the cadence's grid.
    pub slot: NaiveDateTime,
}

/// Why a text is not a usable name pattern. Each message names the placeholder or text at
/// fault; the caller prefixes the feed and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error(
        "the pattern is empty: write the names' shape, e.g. `{{stream}}_{{YYYY}}{{MM}}{{DD}}.csv`"
    )]
    Empty,
    #[error(
        "`{0}` is not a placeholder: they are {{stream}}, {{YYYY}}, {{MM}}, {{DD}}, {{HH}} and \
         {{mi}} (case matters)"
    )]
    UnknownPlaceholder(String),
    #[error("the `{{` at character {at} is not closed by a `}}` (placeholders do not nest)")]
    UnclosedBrace { at: usize },
    #[error("the `}}` at character {at} closes no `{{`")]
    UnopenedBrace { at: usize },
    #[error("`{0}` appears more than once")]
    Repeated(String),
    #[error("`{0}` is a path separator: a pattern names a file, not a folder")]
    PathSeparator(char),
    #[error("a control character (`{}`) cannot be in a file name", .0.escape_unicode())]
    ControlChar(char),
    #[error(
        "`{0}` cannot be in a file name on Windows (`:` is its drive and stream syntax, and \
         `<>\"|?*` are reserved)"
    )]
    WindowsReserved(char),
    #[error("`{field}` is missing: names of a feed every {cadence} need {}", required(.cadence))]
    MissingField { field: TimeField, cadence: Cadence },
    #[error(
        "`{field}` is finer than the cadence ({cadence}): a name predicted for a slot could not \
         know its value; a feed every {cadence} uses {}",
        required(.cadence)
    )]
    FinerThanCadence { field: TimeField, cadence: Cadence },
    #[error(
        "`{{stream}}` is followed by `{next}`, so where a stream's name ends is unclear: put a \
         character that is not a letter or digit (such as `_`) right after `{{stream}}`"
    )]
    AmbiguousStream { next: String },
    #[error(
        "a pattern starting with `.` names hidden files (Bronze stages its copies as \
         `.NAME.ingest-tmp`)"
    )]
    LeadingDot,
    #[error("the pattern ends with `{0}`, which Windows drops from file names")]
    TrailingDotOrSpace(char),
    #[error(
        "names could end like `{ending}` (e.g. `{example}`), which Bronze uses for its own files"
    )]
    ReservedEnding {
        ending: &'static str,
        example: String,
    },
}

/// `{YYYY}, {MM}, {DD} and {HH}`: the fields a cadence needs, for messages.
fn required(cadence: &Cadence) -> String {
    let fields: Vec<_> = TimeField::ALL
        .into_iter()
        .filter(|f| *f <= cadence.finest_field())
        .map(TimeField::placeholder)
        .collect();
    let (last, rest) = fields
        .split_last()
        .expect("the date fields are always needed");
    format!("{} and {last}", rest.join(", "))
}

impl Pattern {
    /// Checks `text` as the name pattern of a feed every `cadence`. The checks run in this
    /// order and the first failure is returned: empty; braces and placeholders (unknown,
    /// unbalanced, repeated); characters (separators, control, Windows-reserved); time fields
    /// (missing, finer than the cadence); what follows `{stream}`; a leading `.`, a trailing
    /// `.` or space; and last, whether some name could end like a Bronze kept-aside or temp file.
    pub fn parse(text: &str, cadence: Cadence) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let pieces = tokenize(text)?;
        for piece in &pieces {
            if let Piece::Literal(literal) = piece {
                check_characters(literal)?;
            }
        }
        check_fields(&pieces, cadence)?;
        let stream_at = pieces.iter().position(|p| *p == Piece::Stream);
        check_after_stream(&pieces, stream_at)?;
        if text.starts_with('.') {
            return Err(PatternError::LeadingDot);
        }
        if let Some(last @ ('.' | ' ')) = text.chars().next_back() {
            return Err(PatternError::TrailingDotOrSpace(last));
        }
        let pattern = Pattern {
            text: text.to_owned(),
            cadence,
            pieces,
            stream_at,
        };
        pattern.check_reserved_endings()?;
        Ok(pattern)
    }

    /// The pattern as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cadence the pattern was checked for; every parsed slot is on its grid.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// Whether names carry a stream (`{stream}`).
    pub fn has_stream(&self) -> bool {
        self.stream_at.is_some()
    }

    /// The name of `stream`'s file for `slot`. Contract: `stream` is `Some` iff
    /// [`Pattern::has_stream`], and then 1 to 64 ASCII letters and digits; `slot` is on the
    /// cadence's grid ([`Cadence::is_slot`]) in years 0 to 9999. Under it, [`Pattern::parse_name`]
    /// gives back exactly `(stream, slot)`; outside it the name may not parse.
    pub fn format(&self, stream: Option<&str>, slot: NaiveDateTime) -> String {
        debug_assert_eq!(stream.is_some(), self.has_stream(), "{}", self.text);
        debug_assert!(
            stream.is_none_or(|s| check_apartment(s).is_ok()),
            "{stream:?}"
        );
        debug_assert!(
            self.cadence.is_slot(slot),
            "{slot} is not a {} slot",
            self.cadence
        );
        debug_assert!((0..=9999).contains(&slot.year()), "{slot}");
        let mut name = String::with_capacity(self.text.len() + MAX_STREAM_LEN);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => name.push_str(text),
                Piece::Stream => name.push_str(stream.unwrap_or_default()),
                Piece::Time(field) => {
                    let width = field.width();
                    let value = field_of(*field, slot);
                    write!(name, "{value:0width$}").expect("writing to a String");
                }
            }
        }
        name
    }

    /// Parses raw directory-entry bytes; non-UTF-8 is a typed error, never a panic.
    pub fn parse_name_bytes(&self, name: &[u8]) -> Result<Parsed, NameError> {
        self.parse_name(std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)?)
    }

    /// Parses a file name of this feed, as strictly as [`crate::naming`]: exact literals and
    /// case, exactly as many digits as each field has, nothing more. Everything around
    /// `{stream}` has a fixed width, so the stream is what lies between; the check on what
    /// follows `{stream}` makes that the maximal run of letters and digits, as a person reads
    /// it. Errors come in naming's order: `PathLike`, then `Pattern` (shape, digits), then
    /// `Apartment` (the stream), then `InvalidDate`, `InvalidTime`; a time off the cadence's
    /// grid (minute 03 in a 5m feed) is `Pattern`.
    pub fn parse_name(&self, name: &str) -> Result<Parsed, NameError> {
        reject_path_like(name)?;
        let (head, tail) = match self.stream_at {
            Some(i) => (&self.pieces[..i], &self.pieces[i + 1..]),
            None => (&self.pieces[..], &[][..]),
        };
        let (head_len, tail_len) = (fixed_len(head), fixed_len(tail));
        let bytes = name.as_bytes();
        let fits = match self.stream_at {
            Some(_) => bytes.len() >= head_len + tail_len,
            None => bytes.len() == head_len,
        };
        if !fits {
            return Err(NameError::Pattern);
        }
        let mut stamp = Stamp::default();
        stamp.read(head, &bytes[..head_len])?;
        stamp.read(tail, &bytes[bytes.len() - tail_len..])?;
        let stream = match self.stream_at {
            Some(_) => {
                // A boundary whenever the literals around matched, as they are whole UTF-8.
                let value = name
                    .get(head_len..bytes.len() - tail_len)
                    .ok_or(NameError::Pattern)?;
                check_apartment(value)?;
                Some(value.to_owned())
            }
            None => None,
        };
        let slot = stamp.time()?;
        if !self.cadence.is_slot(slot) {
            return Err(NameError::Pattern);
        }
        Ok(Parsed { stream, slot })
    }

    /// Refuses the pattern if some name of it could end like a kept-aside copy or a temp file.
    /// The search finds a stream value for which a name would (none if the pattern has no
    /// `{stream}`); the sample name formatted with it is then judged by the layout's own rule.
    /// A data name never starts with `.` (refused above), so `layout::is_temp_name` cannot
    /// hold for it; a `.ingest-tmp` ending is refused anyway, so no listing can confuse them.
    fn check_reserved_endings(&self) -> Result<(), PatternError> {
        let endings = [
            (KEPT_ENDING, ".kept-<16 hex digits>"),
            (TEMP_ENDING, TEMP_ENDING),
        ];
        for (ending, shown) in endings {
            let Some(stream) = stream_for_ending(&self.pieces, ending.as_bytes()) else {
                continue;
            };
            let stream = self.has_stream().then_some(stream.as_str());
            // Midnight is on every cadence's grid; the endings hold no fixed digit, so any
            // slot shows them.
            let sample_slot = NaiveDate::from_ymd_opt(2023, 8, 18)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a valid date");
            let example = self.format(stream, sample_slot);
            let bronze_own = if ending == KEPT_ENDING {
                is_kept_aside(&example)
            } else {
                example.ends_with(TEMP_ENDING)
            };
            debug_assert!(bronze_own, "{example} should end like {ending}");
            if bronze_own {
                return Err(PatternError::ReservedEnding {
                    ending: shown,
                    example,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits `text` into literals and placeholders, refusing unknown, unbalanced or repeated ones.
fn tokenize(text: &str) -> Result<Vec<Piece>, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '}' => return Err(PatternError::UnopenedBrace { at: i + 1 }),
            '{' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| matches!(c, '{' | '}'))
                    .map(|n| i + 1 + n)
                    .filter(|&j| chars[j] == '}')
                    .ok_or(PatternError::UnclosedBrace { at: i + 1 })?;
                let name: String = chars[i..=close].iter().collect();
                let piece = placeholder(&name)
                    .ok_or_else(|| PatternError::UnknownPlaceholder(name.clone()))?;
                if pieces.contains(&piece) {
                    return Err(PatternError::Repeated(name));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                i = close + 1;
            }
            c => {
                literal.push(c);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn placeholder(name: &str) -> Option<Piece> {
    if name == STREAM {
        return Some(Piece::Stream);
    }
    TimeField::ALL
        .into_iter()
        .find(|f| f.placeholder() == name)
        .map(Piece::Time)
}

fn check_characters(literal: &str) -> Result<(), PatternError> {
    for c in literal.chars() {
        if matches!(c, '/' | '\\') {
            return Err(PatternError::PathSeparator(c));
        }
        if c.is_control() {
            return Err(PatternError::ControlChar(c));
        }
        if WINDOWS_RESERVED.contains(&c) {
            return Err(PatternError::WindowsReserved(c));
        }
    }
    Ok(())
}

/// Every field down to the cadence's finest is needed (a slot's name must say which slot it
/// is); a finer one is refused (a predicted name could not know its value).
fn check_fields(pieces: &[Piece], cadence: Cadence) -> Result<(), PatternError> {
    let finest = cadence.finest_field();
    let has = |field| pieces.contains(&Piece::Time(field));
    if let Some(field) = TimeField::ALL.into_iter().find(|&f| f <= finest && !has(f)) {
        return Err(PatternError::MissingField { field, cadence });
    }
    if let Some(field) = TimeField::ALL.into_iter().find(|&f| f > finest && has(f)) {
        return Err(PatternError::FinerThanCadence { field, cadence });
    }
    Ok(())
}

/// A stream value is a run of ASCII letters and digits, so what follows `{stream}` must not
/// continue that run: neither a letter or digit nor a placeholder (the end is fine).
fn check_after_stream(pieces: &[Piece], stream_at: Option<usize>) -> Result<(), PatternError> {
    let next = match stream_at.and_then(|i| pieces.get(i + 1)) {
        Some(Piece::Literal(text)) => text
            .chars()
            .next()
            .filter(char::is_ascii_alphanumeric)
            .map(String::from),
        Some(Piece::Time(field)) => Some(field.placeholder().to_owned()),
        Some(Piece::Stream) | None => None,
    };
    match next {
        Some(next) => Err(PatternError::AmbiguousStream { next }),
        None => Ok(()),
    }
}

/// Total width of pieces around the stream (literals and fixed-width fields only).
fn fixed_len(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(text) => text.len(),
            Piece::Time(field) => field.width(),
            Piece::Stream => 0,
        })
        .sum()
}

fn field_of(field: TimeField, t: NaiveDateTime) -> i64 {
    match field {
        TimeField::Year => i64::from(t.year()),
        TimeField::Month => i64::from(t.month()),
        TimeField::Day => i64::from(t.day()),
        TimeField::Hour => i64::from(t.hour()),
        TimeField::Minute => i64::from(t.minute()),
    }
}

/// The time fields read from a name; absent ones (hour, minute of a coarse feed) are zero.
#[derive(Default)]
struct Stamp {
    fields: [u32; 5],
}

impl Stamp {
    /// Matches `bytes` (exactly as long as `pieces`) against literals and fixed-width fields.
    fn read(&mut self, pieces: &[Piece], bytes: &[u8]) -> Result<(), NameError> {
        let mut at = 0;
        for piece in pieces {
            let end = at + fixed_len(std::slice::from_ref(piece));
            let part = &bytes[at..end];
            match piece {
                Piece::Literal(text) if part == text.as_bytes() => {}
                Piece::Time(field) if part.iter().all(u8::is_ascii_digit) => {
                    let value = part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
                    self.fields[*field as usize] = value;
                }
                _ => return Err(NameError::Pattern),
            }
            at = end;
        }
        Ok(())
    }

    fn time(&self) -> Result<NaiveDateTime, NameError> {
        let [year, month, day, hour, minute] = self.fields;
        let year = i32::try_from(year).map_err(|_| NameError::InvalidDate)?;
        let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(NameError::InvalidDate)?;
        let time = NaiveTime::from_hms_opt(hour, minute, 0).ok_or(NameError::InvalidTime)?;
        Ok(date.and_time(time))
    }
}

/// A stream value under which some name of `pieces` ends with `ending` (`#` there standing
/// for any hex digit), or `None` if no name can. Literals are fixed bytes, fields any digits,
/// the stream 1 to 64 letters or digits of our choice; the pieces are walked back from the
/// end with the set of ending lengths matched so far (one witness stream kept per length).
/// When the match does not reach `{stream}`, or there is none, the witness is `"a"`.
fn stream_for_ending(pieces: &[Piece], ending: &[u8]) -> Option<String> {
    let n = ending.len();
    // reach[k]: the last k bytes of `ending` can be matched; with the stream bytes chosen for
    // that, last first.
    let mut reach: Vec<Option<Vec<u8>>> = vec![None; n + 1];
    reach[0] = Some(Vec::new());
    for piece in pieces.iter().rev() {
        let mut next: Vec<Option<Vec<u8>>> = vec![None; n + 1];
        for (k, chosen) in reach.iter().enumerate() {
            let Some(chosen) = chosen else { continue };
            let lengths = match piece {
                Piece::Stream => 1..=MAX_STREAM_LEN,
                _ => 1..=1,
            };
            for len in lengths {
                let mut chosen = chosen.clone();
                match walk(piece, len, ending, k, &mut chosen) {
                    Walk::Done => return Some(witness(chosen)),
                    Walk::At(k) => {
                        next[k].get_or_insert(chosen);
                    }
                    Walk::Dead => break,
                }
            }
        }
        reach = next;
    }
    None
}

enum Walk {
    /// The piece cannot produce the ending's bytes it would cover.
    Dead,
    /// The piece matched; this many bytes of the ending are now matched.
    At(usize),
    /// The whole ending is matched.
    Done,
}

/// What produces one byte of a name.
#[derive(Clone, Copy)]
enum Source {
    Byte(u8),
    Digit,
    /// A byte of the stream value: any ASCII letter or digit, ours to choose.
    Alnum,
}

impl Source {
    /// The byte this source would put where `ending` wants `want`, if it can.
    fn make(self, want: u8) -> Option<u8> {
        match (self, want) {
            (Source::Byte(b), _) => {
                (b == want || (want == b'#' && b.is_ascii_hexdigit())).then_some(b)
            }
            (Source::Digit, b'#') => Some(b'0'),
            (Source::Digit, _) => want.is_ascii_digit().then_some(want),
            (Source::Alnum, b'#') => Some(b'a'),
            (Source::Alnum, _) => want.is_ascii_alphanumeric().then_some(want),
        }
    }
}

/// Matches `piece` (the stream as `stream_len` bytes) backwards against `ending`, `k` of whose
/// last bytes are already matched; stream bytes chosen are pushed onto `chosen`.
fn walk(piece: &Piece, stream_len: usize, ending: &[u8], k: usize, chosen: &mut Vec<u8>) -> Walk {
    let sources: Vec<Source> = match piece {
        Piece::Literal(text) => text.bytes().rev().map(Source::Byte).collect(),
        Piece::Time(field) => vec![Source::Digit; field.width()],
        Piece::Stream => vec![Source::Alnum; stream_len],
    };
    let mut k = k;
    for source in sources {
        let Some(byte) = source.make(ending[ending.len() - 1 - k]) else {
            return Walk::Dead;
        };
        if matches!(source, Source::Alnum) {
            chosen.push(byte);
        }
        k += 1;
        if k == ending.len() {
            return Walk::Done;
        }
    }
    Walk::At(k)
}

fn witness(mut chosen: Vec<u8>) -> String {
    if chosen.is_empty() {
        return "a".to_owned();
    }
    chosen.reverse();
    String::from_utf8(chosen).expect("ASCII letters and digits")
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pattern_seed_tests.rs"]
mod seed_tests;
