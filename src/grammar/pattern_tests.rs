//! Name patterns: every refusal names its culprit; random valid patterns round-trip every stream
//! and slot; random broken ones are refused for the breakage made. The seed's grammars as
//! patterns are compared with `naming` in `pattern_seed_tests.rs`.

use super::*;
use crate::bronze::layout::{file_name, is_kept_aside, is_temp_name, kept_rel, temp_rel};
use crate::identity::ContentHash;
use crate::naming::minute_from_index;
use proptest::prelude::*;
use proptest::sample::{select, Index};

fn cadence(text: &str) -> Cadence {
    Cadence::parse(text).unwrap()
}

pub(super) fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

/// Names are read strictly: the grid, the stream's alphabet and length, exact literals and case.
#[test]
fn names_are_refused_with_naming_reasons() {
    let five = Pattern::parse("{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv", cadence("5m")).unwrap();
    let ok = five.parse_name("A1_20230818T1005.csv").unwrap();
    assert_eq!(ok.stream.as_deref(), Some("A1"));
    assert_eq!(ok.slot, at(2023, 8, 18, 10, 5));
    let long = format!("{}_20230818T1005.csv", "a".repeat(65));
    let cases = [
        ("A1_20230818T1003.csv", NameError::Pattern),
        ("A1_20230818T1060.csv", NameError::InvalidTime),
        ("A1_20230818T2400.csv", NameError::InvalidTime),
        ("A1_20230230T1000.csv", NameError::InvalidDate),
        ("A1_20230230T1060.csv", NameError::InvalidDate),
        ("_20230818T1005.csv", NameError::Apartment),
        ("A-1_20230818T1005.csv", NameError::Apartment),
        ("Aé_20230818T1005.csv", NameError::Apartment),
        (long.as_str(), NameError::Apartment),
        ("A1_2023081T1005.csv", NameError::Pattern),
        ("A1_20230818T1005.CSV", NameError::Pattern),
        ("A1_20230818t1005.csv", NameError::Pattern),
        ("A1_2023 818T1005.csv", NameError::Pattern),
        ("A1_20230818T1005.csv.part", NameError::Pattern),
        ("A1_20230818T1005.cs", NameError::Pattern),
        (".A1_20230818T1005.csv", NameError::PathLike),
        ("x/A1_20230818T1005.csv", NameError::PathLike),
        ("", NameError::PathLike),
    ];
    for (name, want) in cases {
        assert_eq!(five.parse_name(name), Err(want), "{name}");
    }
    let two_hours = Pattern::parse("{YYYY}{MM}{DD}{HH}.txt", cadence("2h")).unwrap();
    assert_eq!(
        two_hours.parse_name("2023081804.txt").map(|p| p.slot),
        Ok(at(2023, 8, 18, 4, 0))
    );
    assert_eq!(
        two_hours.parse_name("2023081803.txt"),
        Err(NameError::Pattern)
    );
}

/// Each refusal is its own variant, and its message names the placeholder or text at fault.
#[test]
fn each_refusal_names_what_is_wrong() {
    use PatternError as E;
    let d = Cadence::DAY;
    let cases = [
        ("", d, E::Empty, "empty"),
        (
            "{YYYY}{MM}{hh}",
            d,
            E::UnknownPlaceholder("{hh}".into()),
            "`{hh}`",
        ),
        (
            "{YYYY}{MM}{DD}{foo}",
            d,
            E::UnknownPlaceholder("{foo}".into()),
            "`{foo}`",
        ),
        (
            "{}{YYYY}{MM}{DD}",
            d,
            E::UnknownPlaceholder("{}".into()),
            "`{}`",
        ),
        (
            "{YYYY}{MM}{DD",
            d,
            E::UnclosedBrace { at: 11 },
            "character 11",
        ),
        (
            "{YYYY{MM}}{DD}",
            d,
            E::UnclosedBrace { at: 1 },
            "character 1",
        ),
        (
            "{YYYY}{MM}DD}",
            d,
            E::UnopenedBrace { at: 13 },
            "character 13",
        ),
        (
            "{YYYY}{MM}{DD}{DD}",
            d,
            E::Repeated("{DD}".into()),
            "`{DD}`",
        ),
        (
            "{stream}_{stream}{YYYY}{MM}{DD}",
            d,
            E::Repeated("{stream}".into()),
            "`{stream}`",
        ),
        ("a/{YYYY}{MM}{DD}", d, E::PathSeparator('/'), "`/`"),
        ("a\\{YYYY}{MM}{DD}", d, E::PathSeparator('\\'), "`\\`"),
        ("a\0{YYYY}{MM}{DD}", d, E::ControlChar('\0'), "\\u{0}"),
        ("a\t{YYYY}{MM}{DD}", d, E::ControlChar('\t'), "\\u{9}"),
        ("C:{YYYY}{MM}{DD}", d, E::WindowsReserved(':'), "`:`"),
        ("{YYYY}{MM}{DD}*", d, E::WindowsReserved('*'), "`*`"),
        (
            "{YYYY}{DD}.csv",
            d,
            E::MissingField {
                field: TimeField::Month,
                cadence: d,
            },
            "`{MM}`",
        ),
        (
            "{YYYY}{MM}{DD}.csv",
            cadence("1h"),
            E::MissingField {
                field: TimeField::Hour,
                cadence: cadence("1h"),
            },
            "`{HH}` is missing",
        ),
        (
            "{YYYY}{MM}{DD}{HH}.csv",
            cadence("90m"),
            E::MissingField {
                field: TimeField::Minute,
                cadence: cadence("90m"),
            },
            "every 90m need {YYYY}, {MM}, {DD}, {HH} and {mi}",
        ),
        (
            "{YYYY}{MM}{DD}{HH}{mi}.csv",
            cadence("1h"),
            E::FinerThanCadence {
                field: TimeField::Minute,
                cadence: cadence("1h"),
            },
            "`{mi}` is finer than the cadence (1h)",
        ),
        (
            "{YYYY}{MM}{DD}{HH}.csv",
            d,
            E::FinerThanCadence {
                field: TimeField::Hour,
                cadence: d,
            },
            "`{HH}` is finer than the cadence (1d)",
        ),
        (
            "{stream}x{YYYY}{MM}{DD}",
            d,
            E::AmbiguousStream { next: "x".into() },
            "`x`",
        ),
        (
            "{stream}7{YYYY}{MM}{DD}",
            d,
            E::AmbiguousStream { next: "7".into() },
            "`7`",
        ),
        (
            "{stream}{YYYY}{MM}{DD}",
            d,
            E::AmbiguousStream {
                next: "{YYYY}".into(),
            },
            "followed by `{YYYY}`",
        ),
        (".{YYYY}{MM}{DD}", d, E::LeadingDot, "starting with `.`"),
        ("{YYYY}{MM}{DD}.", d, E::TrailingDotOrSpace('.'), "`.`"),
        ("{YYYY}{MM}{DD} ", d, E::TrailingDotOrSpace(' '), "` `"),
    ];
    for (text, cadence, want, culprit) in cases {
        let err = Pattern::parse(text, cadence).expect_err(text);
        assert_eq!(err, want, "{text:?}");
        assert!(err.to_string().contains(culprit), "{text:?}: {err}");
    }
}

/// A name that could pass for a kept-aside copy or a temp file is refused, with the sample
/// name that shows it, whether the ending comes from literals, the stream or the fields.
#[test]
fn patterns_that_could_name_bronze_files_are_refused_with_an_example() {
    let kept = ".kept-<16 hex digits>";
    let cases = [
        (
            "{YYYY}{MM}{DD}.kept-{stream}",
            "1d",
            kept,
            "20230818.kept-aaaaaaaaaaaaaaaa",
        ),
        (
            "{YYYY}{MM}{DD}.{stream}-0123456789abcdef",
            "1d",
            kept,
            "20230818.kept-0123456789abcdef",
        ),
        (
            "{stream}.kept-{YYYY}{MM}{DD}{HH}{mi}ABCD",
            "1m",
            kept,
            "a.kept-202308180000ABCD",
        ),
        (
            "{YYYY}{MM}{DD}.kept-0123456789abcdef",
            "1d",
            kept,
            "20230818.kept-0123456789abcdef",
        ),
        (
            "{YYYY}{MM}{DD}.ingest-tmp",
            "1d",
            TEMP_ENDING,
            "20230818.ingest-tmp",
        ),
        (
            "{YYYY}{MM}{DD}.{stream}-tmp",
            "1d",
            TEMP_ENDING,
            "20230818.ingest-tmp",
        ),
        (
            "{YYYY}{MM}{DD}.in{stream}-tmp",
            "1d",
            TEMP_ENDING,
            "20230818.ingest-tmp",
        ),
    ];
    for (text, cadence_text, ending, example) in cases {
        let err = Pattern::parse(text, cadence(cadence_text)).expect_err(text);
        let want = PatternError::ReservedEnding {
            ending,
            example: example.into(),
        };
        assert_eq!(err, want, "{text}");
        assert!(err.to_string().contains(example), "{err}");
    }
    let near_misses = [
        ("{YYYY}{MM}{DD}.kept-{stream}.csv", "1d"),
        ("{stream}.kept-{YYYY}{MM}{DD}", "1d"),
        ("{YYYY}{MM}{DD}_kept-{stream}", "1d"),
        ("{YYYY}{MM}{DD}.kept{stream}", "1d"),
        ("{stream}.kept-{YYYY}{MM}{DD}{HH}{mi}ABCG", "1m"),
        ("{YYYY}{MM}{DD}.ingest-tmp.csv", "1d"),
        ("{YYYY}{MM}{DD}.{stream}_tmp", "1d"),
    ];
    for (text, cadence_text) in near_misses {
        assert!(
            Pattern::parse(text, cadence(cadence_text)).is_ok(),
            "{text}"
        );
    }
}

/// The endings the pattern check refuses are the ones `bronze::layout` writes and recognises.
#[test]
fn reserved_endings_are_the_layouts_own() {
    let kept = kept_rel("a/b", ContentHash::of(b"x"));
    let tail = &kept[kept.len() - KEPT_ENDING.len()..];
    assert!(is_kept_aside(&kept));
    let shape_ok = tail
        .bytes()
        .zip(KEPT_ENDING.bytes())
        .all(|(b, want)| (want == b'#' && b.is_ascii_hexdigit()) || b == want);
    assert!(shape_ok, "{kept} vs {KEPT_ENDING}");
    let hidden = temp_rel("a/b");
    assert!(hidden.ends_with(TEMP_ENDING) && is_temp_name(file_name(&hidden)));
}

/// One piece of a generated pattern.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Stream,
    Field(TimeField),
}

impl Part {
    fn text(&self) -> &str {
        match self {
            Part::Lit(text) => text,
            Part::Stream => STREAM,
            Part::Field(field) => field.placeholder(),
        }
    }
}

fn render(parts: &[Part]) -> String {
    parts.iter().map(Part::text).collect()
}

/// A generated valid pattern: the required fields (and maybe `{stream}`) in random order,
/// with literals around them.
#[derive(Debug, Clone)]
struct Valid {
    cadence: Cadence,
    parts: Vec<Part>,
}

fn any_cadence() -> impl Strategy<Value = Cadence> {
    let all: Vec<Cadence> = (1..=1440).filter_map(Cadence::from_minutes).collect();
    select(all)
}

/// Literals avoid `k` and `g`, and what follows `{stream}` is one of `_ .`, so no name can end
/// like `.kept-…` or `.ingest-tmp` (their letters could only come from the stream, which would
/// have to be followed by `-`).
fn literal() -> impl Strategy<Value = String> {
    "[A-Za-fh-jl-z0-9_ .é-]{0,4}"
}

fn valid_pattern() -> impl Strategy<Value = Valid> {
    (any_cadence(), any::<bool>())
        .prop_flat_map(|(cadence, with_stream)| {
            let mut placeholders: Vec<Part> = TimeField::ALL
                .into_iter()
                .filter(|f| *f <= cadence.finest_field())
                .map(Part::Field)
                .collect();
            if with_stream {
                placeholders.push(Part::Stream);
            }
            let literals = proptest::collection::vec(literal(), placeholders.len() + 1);
            (
                Just(cadence),
                Just(placeholders).prop_shuffle(),
                literals,
                select(vec!['_', ' ', '.']),
            )
        })
        .prop_map(|(cadence, placeholders, mut literals, separator)| {
            if literals[0].starts_with('.') {
                literals[0].insert(0, 'x');
            }
            if let Some(i) = placeholders.iter().position(|p| *p == Part::Stream) {
                let after = &mut literals[i + 1];
                let is_last = i + 1 == placeholders.len();
                let joins = after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
                if joins || (after.is_empty() && !is_last) {
                    after.insert(0, separator);
                }
            }
            let last = literals
                .last_mut()
                .expect("one more literal than placeholders");
            if last.ends_with(['.', ' ']) {
                last.push('z');
            }
            let mut parts = vec![Part::Lit(literals[0].clone())];
            for (placeholder, literal) in placeholders.into_iter().zip(&literals[1..]) {
                parts.push(placeholder);
                parts.push(Part::Lit(literal.clone()));
            }
            Valid { cadence, parts }
        })
}

/// Any slot on `cadence`'s grid in years 0000 to 9999.
pub(super) fn any_slot(cadence: Cadence) -> impl Strategy<Value = NaiveDateTime> {
    (-1_036_120_320i64..4_223_371_680)
        .prop_map(move |i| cadence.slot_of(minute_from_index(i).expect("in range")))
}

/// What a breakage must make `Pattern::parse` say: exactly this error, or a reserved ending
/// (whose example depends on the pattern); and the text its message must name.
#[derive(Debug)]
enum Want {
    Exact(PatternError),
    Reserved(&'static str),
}

const CONTROL: [char; 6] = ['\0', '\u{1}', '\n', '\t', '\u{7f}', '\u{85}'];
const UNKNOWN: [&str; 8] = [
    "{hh}",
    "{foo}",
    "{Mi}",
    "{}",
    "{yyyy}",
    "{ stream}",
    "{STREAM}",
    "{m}",
];
const HOUR_CADENCES: [u32; 7] = [60, 120, 180, 240, 360, 480, 720];

/// Applies breakage `kind` to `v` at part boundary `at`, choosing with `pick`: the pattern
/// text, the cadence to check it with, the error wanted and the culprit its message names.
fn break_pattern(v: &Valid, kind: u8, at: Index, pick: Index) -> (String, Cadence, Want, String) {
    use PatternError as E;
    let mut parts = v.parts.clone();
    let mut cadence = v.cadence;
    let at = at.index(parts.len() + 1);
    let fields: Vec<usize> = (0..parts.len())
        .filter(|&i| matches!(parts[i], Part::Field(_)))
        .collect();
    let char_at = |parts: &[Part]| render(&parts[..at]).chars().count() + 1;
    let (want, culprit) = match kind {
        0 => {
            let Part::Field(field) = parts.remove(fields[pick.index(fields.len())]) else {
                unreachable!()
            };
            (
                Want::Exact(E::MissingField { field, cadence }),
                field.placeholder().to_owned(),
            )
        }
        1 => {
            let placeholders: Vec<Part> = parts
                .iter()
                .filter(|p| !matches!(p, Part::Lit(_)))
                .cloned()
                .collect();
            let copy = pick.get(&placeholders).clone();
            let text = copy.text().to_owned();
            parts.insert(at, copy);
            (Want::Exact(E::Repeated(text.clone())), text)
        }
        2 => {
            let c = *pick.get(&['/', '\\']);
            parts.insert(at, Part::Lit(c.to_string()));
            (Want::Exact(E::PathSeparator(c)), c.to_string())
        }
        3 => {
            let c = *pick.get(&CONTROL);
            parts.insert(at, Part::Lit(c.to_string()));
            (
                Want::Exact(E::ControlChar(c)),
                c.escape_unicode().to_string(),
            )
        }
        4 => {
            let c = *pick.get(WINDOWS_RESERVED);
            parts.insert(at, Part::Lit(c.to_string()));
            (Want::Exact(E::WindowsReserved(c)), c.to_string())
        }
        5 => {
            let unknown = *pick.get(&UNKNOWN);
            parts.insert(at, Part::Lit(unknown.to_owned()));
            (
                Want::Exact(E::UnknownPlaceholder(unknown.into())),
                format!("`{unknown}`"),
            )
        }
        6 | 7 => {
            let (brace, position) = (if kind == 6 { "{" } else { "}" }, char_at(&parts));
            parts.insert(at, Part::Lit(brace.to_owned()));
            let err = if kind == 6 {
                E::UnclosedBrace { at: position }
            } else {
                E::UnopenedBrace { at: position }
            };
            (Want::Exact(err), format!("character {position}"))
        }
        8 => {
            let field = match cadence.finest_field() {
                TimeField::Day => TimeField::Hour,
                TimeField::Hour => TimeField::Minute,
                _ => {
                    cadence = Cadence::from_minutes(*pick.get(&HOUR_CADENCES)).unwrap();
                    TimeField::Minute
                }
            };
            if !parts.contains(&Part::Field(field)) {
                parts.insert(at, Part::Field(field));
            }
            (
                Want::Exact(E::FinerThanCadence { field, cadence }),
                field.placeholder().to_owned(),
            )
        }
        9 => {
            let c = *pick.get(&['x', 'Z', '0', '9']);
            match parts.iter().position(|p| *p == Part::Stream) {
                Some(i) => parts.insert(i + 1, Part::Lit(c.to_string())),
                None => parts
                    .splice(at..at, [Part::Stream, Part::Lit(c.to_string())])
                    .for_each(drop),
            }
            (
                Want::Exact(E::AmbiguousStream {
                    next: c.to_string(),
                }),
                format!("`{c}`"),
            )
        }
        10 => {
            replace_stream(&mut parts);
            let i = fields[pick.index(fields.len())];
            let Part::Field(field) = parts[i] else {
                unreachable!()
            };
            parts.insert(i, Part::Stream);
            let next = field.placeholder().to_owned();
            (Want::Exact(E::AmbiguousStream { next: next.clone() }), next)
        }
        11 => {
            parts.insert(0, Part::Lit(".".into()));
            (Want::Exact(E::LeadingDot), "`.`".into())
        }
        12 => {
            let c = *pick.get(&['.', ' ']);
            parts.push(Part::Lit(c.to_string()));
            (Want::Exact(E::TrailingDotOrSpace(c)), format!("`{c}`"))
        }
        13..=16 => {
            replace_stream(&mut parts);
            let tail: &[Part] = match kind {
                13 => &[Part::Lit(".kept-".into()), Part::Stream],
                14 => &[
                    Part::Lit(".".into()),
                    Part::Stream,
                    Part::Lit("-0123456789ABCDEF".into()),
                ],
                15 => &[Part::Lit(".ingest-tmp".into())],
                _ => &[
                    Part::Lit(".".into()),
                    Part::Stream,
                    Part::Lit("-tmp".into()),
                ],
            };
            parts.extend_from_slice(tail);
            let ending = if kind <= 14 {
                ".kept-<16 hex digits>"
            } else {
                TEMP_ENDING
            };
            (Want::Reserved(ending), ending.to_owned())
        }
        _ => unreachable!("kinds are 0..=16"),
    };
    (render(&parts), cadence, want, culprit)
}

/// Takes `{stream}` out of the way (as a plain `x`) without changing any other part's place.
fn replace_stream(parts: &mut [Part]) {
    if let Some(p) = parts.iter_mut().find(|p| **p == Part::Stream) {
        *p = Part::Lit("x".into());
    }
}

pub(super) fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

proptest! {
    /// Every valid pattern formats every (stream, slot) into a name that parses back to exactly
    /// that, and that Bronze would take for neither a temp nor a kept-aside file.
    #[test]
    fn valid_patterns_round_trip_every_stream_and_slot(
        (v, slot) in valid_pattern().prop_flat_map(|v| (Just(v.clone()), any_slot(v.cadence))),
        stream in "[A-Za-z0-9]{1,64}",
    ) {
        let text = render(&v.parts);
        let pattern = Pattern::parse(&text, v.cadence);
        prop_assert!(pattern.is_ok(), "{:?}: {:?}", text, pattern);
        let pattern = pattern.unwrap();
        prop_assert_eq!(pattern.has_stream(), v.parts.contains(&Part::Stream));
        let stream = pattern.has_stream().then_some(stream.as_str());
        let name = pattern.format(stream, slot);
        let want = Parsed { stream: stream.map(str::to_owned), slot };
        prop_assert_eq!(pattern.parse_name(&name), Ok(want.clone()), "{}", name);
        prop_assert_eq!(pattern.parse_name_bytes(name.as_bytes()), Ok(want));
        prop_assert!(!is_kept_aside(&name) && !is_temp_name(&name), "{}", name);
    }

    /// A valid pattern with one breakage (a field dropped, duplicated, finer than the cadence;
    /// a separator, control or Windows character; an unknown placeholder or lone brace; a
    /// letter or placeholder after `{stream}`; a leading dot, trailing dot or space; an ending
    /// like `.kept-{stream}` or `.ingest-tmp`) is refused for exactly that, and says so.
    #[test]
    fn broken_patterns_are_refused_naming_the_breakage(
        v in valid_pattern(),
        kind in 0u8..=16,
        at in any::<Index>(),
        pick in any::<Index>(),
    ) {
        let (text, cadence, want, culprit) = break_pattern(&v, kind, at, pick);
        let err = Pattern::parse(&text, cadence);
        prop_assert!(err.is_err(), "{:?} was accepted", text);
        let err = err.unwrap_err();
        match &want {
            Want::Exact(want) => prop_assert_eq!(&err, want, "{:?}", text),
            Want::Reserved(ending) => prop_assert!(
                matches!(&err, PatternError::ReservedEnding { ending: e, .. } if e == ending),
                "{:?}: {:?}", text, err
            ),
        }
        prop_assert!(err.to_string().contains(&culprit), "{:?}: {} lacks {:?}", text, err, culprit);
    }

    /// Random text never panics the pattern check, and whatever it accepts round-trips.
    #[test]
    fn any_pattern_text_is_checked_without_panic(
        text in "[{}a-zA-Z_. :/\u{0}-]{0,8}(\\{(stream|YYYY|MM|DD|HH|mi|hh)\\}[a-z_.-]{0,3}){0,7}",
        cadence in any_cadence(),
    ) {
        if let Ok(pattern) = Pattern::parse(&text, cadence) {
            let slot = cadence.slot_of(at(2024, 2, 29, 23, 59));
            let stream = pattern.has_stream().then_some("S1");
            let name = pattern.format(stream, slot);
            prop_assert_eq!(pattern.parse_name(&name).map(|p| p.slot), Ok(slot));
        }
    }

    /// Any bytes given to any valid pattern give a typed result, never a panic.
    #[test]
    fn arbitrary_names_never_panic(v in valid_pattern(), bytes in any_bytes(60)) {
        let pattern = Pattern::parse(&render(&v.parts), v.cadence).unwrap();
        let _ = pattern.parse_name_bytes(&bytes);
    }
}
