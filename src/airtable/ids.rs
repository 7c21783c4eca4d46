//! Airtable object IDs: a three-letter prefix plus 14 ASCII alphanumerics (17 characters).
//!
//! Each kind of ID is its own type, so a record ID cannot be passed where a base ID is
//! expected. Parsing (`FromStr`, `TryFrom<String>`, serde) rejects malformed IDs with an
//! [`IdError`] that names the expected shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tinystr::TinyAsciiStr;

/// Number of characters after the prefix.
pub const ID_BODY_LEN: usize = 14;

/// Number of characters of an ID: the three-letter prefix and the body.
const ID_LEN: usize = 3 + ID_BODY_LEN;

/// A malformed Airtable ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {kind} ID {shown:?}: expected \"{prefix}\" followed by {ID_BODY_LEN} letters or digits (17 characters, e.g. {example}){reason}"
)]
pub struct IdError {
    /// What the ID should identify ("base", "table", ...).
    pub kind: &'static str,
    /// The expected prefix (`app`, `tbl`, ...).
    pub prefix: &'static str,
    /// An example of a valid ID.
    pub example: &'static str,
    /// The rejected input, cut to 40 characters.
    pub shown: String,
    /// Extra detail, e.g. "; this looks like a table ID".
    pub reason: String,
}

/// Every known prefix with the object it names (for the "this looks like..." hint).
const KNOWN_PREFIXES: &[(&str, &str)] = &[
    ("app", "a base"),
    ("tbl", "a table"),
    ("fld", "a field"),
    ("rec", "a record"),
    ("viw", "a view"),
    ("usr", "a user"),
    ("com", "a comment"),
    ("wsp", "a workspace"),
    ("sel", "a select choice"),
    ("att", "an attachment"),
    ("pat", "a personal access token"),
];

fn check(
    s: &str,
    kind: &'static str,
    prefix: &'static str,
    example: &'static str,
) -> Result<(), IdError> {
    let well_formed = s.len() == prefix.len() + ID_BODY_LEN
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric());
    if well_formed {
        return Ok(());
    }
    Err(id_error(s, kind, prefix, example))
}

/// The error for a malformed ID `s`, saying what is wrong with it where that can be told.
fn id_error(s: &str, kind: &'static str, prefix: &'static str, example: &'static str) -> IdError {
    // Never echo something that looks like a token.
    let looks_secret = s.starts_with("pat") && s.len() > 20 || s.contains('.') && s.len() > 40;
    let shown = if looks_secret {
        "<redacted>".to_owned()
    } else {
        s.chars().take(40).collect()
    };
    let mut reason = String::new();
    if s.trim() != s {
        reason = "; remove the surrounding whitespace".to_owned();
    } else if let Some((_, what)) = KNOWN_PREFIXES
        .iter()
        .find(|(p, _)| *p != prefix && s.starts_with(p) && s.len() >= 17)
    {
        reason = format!("; this looks like the ID of {what}");
    } else if s.starts_with(prefix) {
        reason = format!(
            "; got {} characters after the prefix",
            s.len() - prefix.len()
        );
    }
    IdError {
        kind,
        prefix,
        example,
        shown,
        reason,
    }
}

macro_rules! airtable_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $prefix:literal, $example:literal) => {
        $(#[$meta])*
        ///
        /// Held inline (17 ASCII bytes, `Copy`-sized): a page of 100 records reads 100 of them,
        /// and an allocation each was a twentieth of reading the page.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(TinyAsciiStr<ID_LEN>);

        impl $name {
            /// The prefix every ID of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parse and validate an ID.
            pub fn new(s: impl AsRef<str>) -> Result<Self, IdError> {
                let s = s.as_ref();
                check(s, $kind, $prefix, $example)?;
                // `check` let through only 17 ASCII letters and digits.
                TinyAsciiStr::try_from_str(s)
                    .map(Self)
                    .map_err(|_| id_error(s, $kind, $prefix, $example))
            }

            /// Whether `s` is a well-formed ID of this kind.
            pub fn is_valid(s: &str) -> bool {
                check(s, $kind, $prefix, $example).is_ok()
            }

            /// The ID as a string slice.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The owned string.
            pub fn into_string(self) -> String {
                self.0.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.into_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Id;
                impl serde::de::Visitor<'_> for Id {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} ID", $kind)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(Id)
            }
        }
    };
}

airtable_id!(
    /// A base ID (`app…`).
    BaseId, "base", "app", "appLkNDICXNqxSDhG"
);
airtable_id!(
    /// A table ID (`tbl…`).
    TableId, "table", "tbl", "tbltp8DGLhqbUmjK1"
);
airtable_id!(
    /// A field ID (`fld…`).
    FieldId, "field", "fld", "fld1VnoyuotSTyxW1"
);
airtable_id!(
    /// A record ID (`rec…`).
    RecordId, "record", "rec", "rec560UJdUtocSouk"
);
airtable_id!(
    /// A view ID (`viw…`).
    ViewId, "view", "viw", "viwQpsuEDqHFqegkp"
);
airtable_id!(
    /// A user ID (`usr…`).
    UserId, "user", "usr", "usrL2PNC5o3H4lBEi"
);
airtable_id!(
    /// A comment ID (`com…`).
    CommentId, "comment", "com", "comB5z37Mg9zaEPw6"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_ids() {
        assert_eq!(
            "appLkNDICXNqxSDhG".parse::<BaseId>().unwrap().as_str(),
            "appLkNDICXNqxSDhG"
        );
        assert!(RecordId::is_valid("rec560UJdUtocSouk"));
        assert!(CommentId::is_valid("comB5z37Mg9zaEPw6"));
    }

    #[test]
    fn rejects_malformed_ids_with_a_clear_error() {
        let e = "app123".parse::<BaseId>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("invalid base ID"), "{msg}");
        assert!(msg.contains("\"app\" followed by 14"), "{msg}");
        assert!(msg.contains("got 3 characters"), "{msg}");

        let e = "tbltp8DGLhqbUmjK1".parse::<BaseId>().unwrap_err();
        assert!(
            e.to_string().contains("looks like the ID of a table"),
            "{e}"
        );

        assert!("appLkNDICXNqxSDh!".parse::<BaseId>().is_err());
        assert!("appLkNDICXNqxSDhGG".parse::<BaseId>().is_err());
        assert!(" appLkNDICXNqxSDhG".parse::<BaseId>().is_err());
        assert!("".parse::<RecordId>().is_err());
        // Non-ASCII must not panic on slicing.
        assert!("appé234567890123".parse::<BaseId>().is_err());
        assert!("ééééééééé".parse::<BaseId>().is_err());
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let id: RecordId = serde_json::from_str("\"rec560UJdUtocSouk\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"rec560UJdUtocSouk\"");
        let err = serde_json::from_str::<RecordId>("\"recXYZ\"").unwrap_err();
        assert!(err.to_string().contains("invalid record ID"));
    }

    /// IDs held inline read from every kind of string a deserializer gives (borrowed from the
    /// text, unescaped into a buffer, owned by a JSON value), refuse what is not a string, and
    /// order and compare as their text does.
    #[test]
    fn inline_ids_read_from_any_string_and_order_as_text() {
        let escaped: RecordId = serde_json::from_str("\"rec560UJdUtocSou\\u006b\"").unwrap();
        let from_value: RecordId =
            serde_json::from_value(serde_json::json!("rec560UJdUtocSouk")).unwrap();
        assert_eq!(escaped, from_value);
        assert_eq!(escaped.as_str(), "rec560UJdUtocSouk");
        assert_eq!(String::from(escaped.clone()), "rec560UJdUtocSouk");
        let err = serde_json::from_str::<RecordId>("17").unwrap_err();
        assert!(err.to_string().contains("a record ID"), "{err}");
        let mut ids: Vec<RecordId> = [
            "recZZZZZZZZZZZZZZ",
            "rec00000000000000",
            "recaaaaaaaaaaaaaa",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        ids.sort();
        let texts: Vec<&str> = ids.iter().map(RecordId::as_str).collect();
        assert_eq!(
            texts,
            [
                "rec00000000000000",
                "recZZZZZZZZZZZZZZ",
                "recaaaaaaaaaaaaaa"
            ]
        );
    }

    #[test]
    fn never_echoes_a_token() {
        let tok = format!("pat{}.{}", "A".repeat(14), "a".repeat(64));
        let e = tok.parse::<BaseId>().unwrap_err();
        assert!(!e.to_string().contains(&tok));
        assert!(!format!("{e:?}").contains("aaaaaaaaaaaaaaaaaaaa"));
    }
}
