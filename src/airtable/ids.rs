//! Airtable object IDs: a three-letter prefix plus 14 ASCII alphanumerics (17 characters).
//!
//! Each kind of ID is its own type, so a record ID cannot be passed where a base ID is
//! expected. Parsing (`FromStr`, `TryFrom<String>`, serde) rejects malformed IDs with an
//! [`IdError`] that names the expected shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of characters after the prefix.
pub const ID_BODY_LEN: usize = 14;

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
    Err(IdError {
        kind,
        prefix,
        example,
        shown,
        reason,
    })
}

macro_rules! airtable_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $prefix:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every ID of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parse and validate an ID.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s, $kind, $prefix, $example)?;
                Ok(Self(s))
            }

            /// Whether `s` is a well-formed ID of this kind.
            pub fn is_valid(s: &str) -> bool {
                check(s, $kind, $prefix, $example).is_ok()
            }

            /// The ID as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
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
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
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

    #[test]
    fn never_echoes_a_token() {
        let tok = format!("pat{}.{}", "A".repeat(14), "a".repeat(64));
        let e = tok.parse::<BaseId>().unwrap_err();
        assert!(!e.to_string().contains(&tok));
        assert!(!format!("{e:?}").contains("aaaaaaaaaaaaaaaaaaaa"));
    }
}
