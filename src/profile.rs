//! Keyring profile names: the one validated type that both [`crate::config`] (which reads the
//! name from flags, env or the TOML file) and [`crate::auth`] (which stores tokens under it) use.
//! It lives beside both so that neither imports the other.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// The profile used when none is given.
pub const DEFAULT_PROFILE: &str = "default";

/// Keyring user of the entry holding the HTTP transport's bearer tokens: no profile may be named
/// so.
pub const RESERVED_HTTP_AUTH: &str = "http-auth";

/// Prefix of the throwaway entries the keyring probe writes: no profile may start with it.
pub const RESERVED_PROBE_PREFIX: &str = "probe-";

/// Longest profile name accepted.
pub const MAX_PROFILE_LEN: usize = 64;

/// Why a profile name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid profile name {profile:?}: {reason}")]
pub struct ProfileError {
    /// The refused name.
    pub profile: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A valid keyring profile name: 1-64 characters of `A-Z a-z 0-9 - _ .`, not a reserved entry.
///
/// ```
/// use airtable_mcp::profile::Profile;
///
/// let p: Profile = "work".parse().unwrap();
/// assert_eq!(p.as_str(), "work");
/// assert!("has space".parse::<Profile>().is_err());
/// assert!("http-auth".parse::<Profile>().is_err());
/// assert_eq!(Profile::default().as_str(), "default");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Profile(String);

/// `"work"`, like the string: messages print profiles with `{:?}`.
impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Profile {
    /// Check `name` and wrap it.
    pub fn new(name: &str) -> Result<Profile, ProfileError> {
        validate(name)?;
        Ok(Profile(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is [`DEFAULT_PROFILE`].
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_PROFILE
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile(DEFAULT_PROFILE.to_owned())
    }
}

impl FromStr for Profile {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::new(s)
    }
}

impl Deref for Profile {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Profile {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check a profile name without wrapping it.
pub fn validate(name: &str) -> Result<(), ProfileError> {
    let refuse = |reason| {
        Err(ProfileError {
            profile: name.to_owned(),
            reason,
        })
    };
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > MAX_PROFILE_LEN || !ok_chars {
        return refuse("use 1-64 letters, digits, '-', '_' or '.'");
    }
    if name == RESERVED_HTTP_AUTH || name.starts_with(RESERVED_PROBE_PREFIX) {
        return refuse("this name is reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_validated() {
        for good in ["default", "work", "my.personal_2", "a-b", &"a".repeat(64)] {
            assert_eq!(Profile::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "has space",
            "http-auth",
            "probe-1",
            "x/y",
            "é",
            &"a".repeat(65),
        ] {
            let e = Profile::new(bad).unwrap_err();
            assert_eq!(e.profile, bad);
        }
        assert!(Profile::default().is_default());
        assert_eq!(format!("{:?}", Profile::new("work").unwrap()), "\"work\"");
    }
}
