//! Value objects that refuse bad data at the edge.
//!
//! Each type has a `parse` constructor returning a specific error, and
//! deserializes through it, so a value of one of these types is valid by
//! construction wherever it appears (a command off the wire, an event read
//! back from the log years later).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The 23 letters of the UPN check-letter table (I, O and S are not used).
pub const CHECK_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

/// Why a string is not a UPN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpnError {
    #[error("a UPN has 13 characters, this has {0}")]
    WrongLength(usize),
    #[error("character {position} of a UPN must be a digit")]
    NotADigit { position: usize },
    #[error("the last character of a UPN must be a digit or a check-table letter")]
    BadFinalCharacter,
    #[error("the first character of a UPN must be a check-table letter")]
    BadCheckCharacter,
    #[error("the check letter should be {expected}, not {found}")]
    CheckLetterMismatch { expected: char, found: char },
}

/// A unique pupil number: check letter, LA code (3), establishment (4),
/// issue year (2), serial (3). A temporary UPN ends in a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upn(String);

impl Upn {
    /// Parses a UPN, checking its check letter. Surrounding whitespace is
    /// refused rather than trimmed: a UPN is copied, never typed loosely.
    pub fn parse(raw: &str) -> Result<Self, UpnError> {
        let bytes = raw.as_bytes();
        if raw.chars().count() != 13 || bytes.len() != 13 {
            return Err(UpnError::WrongLength(raw.chars().count()));
        }
        if !CHECK_LETTERS.contains(&bytes[0]) {
            return Err(UpnError::BadCheckCharacter);
        }
        for (index, byte) in bytes.iter().enumerate().take(12).skip(1) {
            if !byte.is_ascii_digit() {
                return Err(UpnError::NotADigit {
                    position: index + 1,
                });
            }
        }
        let last = bytes[12];
        if !last.is_ascii_digit() && !CHECK_LETTERS.contains(&last) {
            return Err(UpnError::BadFinalCharacter);
        }
        let expected = check_letter(&bytes[1..]);
        if expected != bytes[0] {
            return Err(UpnError::CheckLetterMismatch {
                expected: char::from(expected),
                found: char::from(bytes[0]),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// A temporary UPN ends in a letter in place of the last serial digit.
    pub fn is_temporary(&self) -> bool {
        self.0.as_bytes()[12].is_ascii_alphabetic()
    }

    /// The LA code embedded in characters 2 to 4.
    pub fn la_code(&self) -> &str {
        &self.0[1..4]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check letter for characters 2 to 13 of a UPN (weights 2 to 13, sum
/// mod 23; a letter in position 13 counts by its index in the table).
///
/// The caller guarantees 12 characters: digits, the last possibly a table letter.
pub fn check_letter(body: &[u8]) -> u8 {
    let sum: usize = body
        .iter()
        .zip(2..)
        .map(|(byte, weight)| {
            let value = if byte.is_ascii_digit() {
                usize::from(byte - b'0')
            } else {
                CHECK_LETTERS
                    .iter()
                    .position(|letter| letter == byte)
                    .unwrap_or(0)
            };
            value * weight
        })
        .sum();
    CHECK_LETTERS[sum % 23]
}

macro_rules! string_newtype {
    ($name:ident, $error:ty) => {
        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }
    };
}

string_newtype!(Upn, UpnError);

/// Why a string is not a fixed-width numeric code (LA code, URN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {digits} digits, not {raw:?}")]
pub struct DigitsError {
    pub what: &'static str,
    pub digits: usize,
    pub raw: String,
}

fn parse_digits(raw: &str, digits: usize, what: &'static str) -> Result<String, DigitsError> {
    if raw.len() == digits && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(DigitsError {
            what,
            digits,
            raw: raw.chars().take(20).collect(),
        })
    }
}

/// A local authority code: 3 digits (for example 330, Birmingham).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LaCode(String);

impl LaCode {
    pub fn parse(raw: &str) -> Result<Self, DigitsError> {
        parse_digits(raw, 3, "an LA code").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype!(LaCode, DigitsError);

/// A school's unique reference number from GIAS: 6 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Urn(String);

impl Urn {
    pub fn parse(raw: &str) -> Result<Self, DigitsError> {
        parse_digits(raw, 6, "a URN").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype!(Urn, DigitsError);

/// Why a string is not a usable personal name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name must not be empty")]
    Empty,
    #[error("a name is at most 100 characters")]
    TooLong,
    #[error("a name must not contain control characters or surrounding spaces")]
    BadCharacters,
}

/// A given or family name as the school records it: 1 to 100 characters,
/// no control characters, no surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.trim().is_empty() {
            return Err(NameError::Empty);
        }
        if raw.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        if raw.trim() != raw || raw.chars().any(char::is_control) {
            return Err(NameError::BadCharacters);
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype!(Name, NameError);

/// Special educational needs provision: E = EHC plan, K = SEN support, N = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sen {
    N,
    K,
    E,
}

/// The census reason codes for suspensions and exclusions, kept as data so a
/// new code is a one-line change.
pub const EXCLUSION_REASON_CODES: &[(&str, &str)] = &[
    ("PP", "physical assault against a pupil"),
    ("PA", "physical assault against an adult"),
    (
        "VP",
        "verbal abuse or threatening behaviour against a pupil",
    ),
    (
        "VA",
        "verbal abuse or threatening behaviour against an adult",
    ),
    (
        "OW",
        "use or threat of use of an offensive weapon or prohibited item",
    ),
    ("BU", "bullying"),
    ("RA", "racist abuse"),
    ("LG", "abuse against sexual orientation and gender identity"),
    ("DS", "abuse relating to disability"),
    ("SM", "sexual misconduct"),
    ("DA", "drug and alcohol related"),
    ("DM", "damage to property"),
    ("TH", "theft"),
    ("DB", "persistent or general disruptive behaviour"),
    (
        "MT",
        "inappropriate use of social media or online technology",
    ),
    (
        "PH",
        "wilful and repeated transgression of public-health measures",
    ),
];

/// Why a string is not a census exclusion reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a census exclusion reason code")]
pub struct ReasonCodeError(pub String);

/// One census exclusion reason code, such as `DB`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExclusionReason(String);

impl ExclusionReason {
    pub fn parse(raw: &str) -> Result<Self, ReasonCodeError> {
        if EXCLUSION_REASON_CODES.iter().any(|(code, _)| *code == raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ReasonCodeError(raw.chars().take(10).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype!(ExclusionReason, ReasonCodeError);

/// A ground for deleting a pupil from the admission register: a letter of
/// regulation 9(1)(a)-(o) of the 2024 registration regulations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovalGround {
    /// Registered at another school.
    A,
    /// Left after nursery.
    B,
    /// Dual registration ended.
    C,
    /// School attendance order amended.
    D,
    /// School attendance order revoked.
    E,
    /// Parent's written notice of education otherwise than at school.
    F,
    /// No longer within reasonable distance.
    G,
    /// Not returned after leave of absence.
    H,
    /// 20 school days' continuous unauthorised absence.
    I,
    /// Detained under a sentence.
    J,
    /// Died.
    K,
    /// Over compulsory school age.
    L,
    /// Boarding fees unpaid.
    M,
    /// Left an independent or non-maintained special school.
    N,
    /// Permanently excluded.
    O,
}

impl RemovalGround {
    /// Grounds (h) and (i) need joint school and LA reasonable enquiries first.
    pub fn needs_enquiries(self) -> bool {
        matches!(self, Self::H | Self::I)
    }

    /// Grounds whose own meaning says where the child is, or that no school
    /// place is owed (died, over age, home education, detained, ...). Under
    /// any other ground a removal with no destination school leaves the
    /// child's education unknown: a child missing education.
    pub fn accounts_for_child(self) -> bool {
        matches!(
            self,
            Self::B | Self::C | Self::D | Self::E | Self::F | Self::J | Self::K | Self::L
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_good_upns_parse() {
        for raw in ["B801200005001", "X00180001701A"] {
            assert!(Upn::parse(raw).is_ok(), "{raw} should parse");
        }
        assert!(Upn::parse("X00180001701A").expect("valid").is_temporary());
        assert!(!Upn::parse("B801200005001").expect("valid").is_temporary());
    }

    #[test]
    fn a_wrong_vendor_example_is_rejected_with_the_right_letter() {
        assert_eq!(
            Upn::parse("B207000016049"),
            Err(UpnError::CheckLetterMismatch {
                expected: 'P',
                found: 'B'
            })
        );
    }

    #[test]
    fn codes_are_fixed_width_digits() {
        assert!(LaCode::parse("330").is_ok());
        assert!(LaCode::parse("33").is_err());
        assert!(LaCode::parse("33a").is_err());
        assert!(Urn::parse("100002").is_ok());
        assert!(Urn::parse("1000020").is_err());
    }

    #[test]
    fn reason_codes_come_from_the_census_list() {
        assert!(ExclusionReason::parse("DB").is_ok());
        assert!(ExclusionReason::parse("XX").is_err());
    }

    #[test]
    fn names_refuse_empty_and_padded_values() {
        assert_eq!(Name::parse("  "), Err(NameError::Empty));
        assert_eq!(Name::parse(" Amy"), Err(NameError::BadCharacters));
        assert!(Name::parse("Amy-Leigh O'Neill").is_ok());
    }
}
