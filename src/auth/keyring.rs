//! The OS keyring: store selection (with a real probe), and the entries we keep.
//!
//! Backends, in the order they are tried:
//! - macOS: the login Keychain;
//! - Windows: the Credential Manager;
//! - Linux: the Secret Service over D-Bus (gnome-keyring, KWallet, KeePassXC) when it answers a
//!   real set/get/delete probe, else the kernel keyring (keyutils). The kernel keyring is a cache:
//!   it survives until reboot or until the per-user persistent keyring expires (3 days idle by
//!   default), so `airtable-mcp doctor` says so when it is the backend in use.
//!
//! Constructing a store succeeds even when every call on it will fail (a locked collection, a
//! session keyring the process may not write), which is why selection probes with a real entry.
//!
//! Every function here is **blocking** (D-Bus round trips, syscalls): call them from
//! `tokio::task::spawn_blocking` in async code. Entries live under the service
//! [`SERVICE`] with the profile name as the user; the HTTP transport's bearer tokens live in the
//! entry [`HTTP_AUTH_USER`].
//!
//! `AIRTABLE_MCP_KEYRING` forces a backend (`auto`, `secret-service`, `keyutils`, `keychain`,
//! `windows`, `none`); `none` disables the keyring entirely (tokens from the environment only).

use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

use super::AuthError;
use crate::env;
use crate::profile::{self, Profile};

/// Keyring service name of every entry we store (unless `AIRTABLE_MCP_KEYRING_SERVICE` says
/// otherwise: tests and side-by-side installs use their own).
pub const SERVICE: &str = "airtable-mcp";

/// The service name in use.
pub fn service() -> String {
    std::env::var(env::AIRTABLE_MCP_KEYRING_SERVICE)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| SERVICE.to_owned())
}

/// Keyring user of the entry holding the HTTP transport's accepted bearer tokens (one a line).
/// It is reserved: no profile may have this name.
pub const HTTP_AUTH_USER: &str = profile::RESERVED_HTTP_AUTH;

/// A keyring backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// macOS Keychain.
    Keychain,
    /// Windows Credential Manager.
    WindowsCredentialManager,
    /// Linux Secret Service (D-Bus: gnome-keyring, KWallet, KeePassXC).
    SecretService,
    /// Linux kernel keyring (keyutils), linked into the per-user persistent keyring.
    Keyutils,
}

impl Backend {
    /// The name accepted by `AIRTABLE_MCP_KEYRING`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Keychain => "keychain",
            Backend::WindowsCredentialManager => "windows",
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
        }
    }

    /// A human description for status lines.
    pub fn description(self) -> &'static str {
        match self {
            Backend::Keychain => "macOS Keychain",
            Backend::WindowsCredentialManager => "Windows Credential Manager",
            Backend::SecretService => "Secret Service (D-Bus)",
            Backend::Keyutils => "Linux kernel keyring (keyutils)",
        }
    }

    /// The backends this platform has, in the order auto-selection tries them.
    pub fn candidates() -> &'static [Backend] {
        #[cfg(target_os = "macos")]
        {
            &[Backend::Keychain]
        }
        #[cfg(target_os = "windows")]
        {
            &[Backend::WindowsCredentialManager]
        }
        #[cfg(target_os = "linux")]
        {
            &[Backend::SecretService, Backend::Keyutils]
        }
        #[cfg(not(any(target_os = "macos", target_os = "windows", target_os = "linux")))]
        {
            &[]
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// What `AIRTABLE_MCP_KEYRING` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// Probe the platform's backends in order and take the first that works.
    Auto,
    /// Use this backend without trying another.
    Force(Backend),
    /// No keyring at all.
    Disabled,
}

impl Preference {
    /// Parse a value of `AIRTABLE_MCP_KEYRING` (case-insensitive; empty means auto).
    pub fn parse(value: &str) -> Result<Preference, AuthError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Preference::Auto),
            "none" | "off" | "disabled" => Ok(Preference::Disabled),
            "secret-service" | "secretservice" | "secret_service" => {
                Ok(Preference::Force(Backend::SecretService))
            }
            "keyutils" | "kernel" => Ok(Preference::Force(Backend::Keyutils)),
            "keychain" | "macos" => Ok(Preference::Force(Backend::Keychain)),
            "windows" | "wincred" => Ok(Preference::Force(Backend::WindowsCredentialManager)),
            other => Err(AuthError::KeyringConfig(format!(
                "{}={other:?} is not a keyring backend; use auto, secret-service, keyutils, \
                 keychain, windows or none",
                env::AIRTABLE_MCP_KEYRING
            ))),
        }
    }

    /// Read `AIRTABLE_MCP_KEYRING`.
    pub fn from_env() -> Result<Preference, AuthError> {
        match std::env::var(env::AIRTABLE_MCP_KEYRING) {
            Ok(v) => Preference::parse(&v),
            Err(_) => Ok(Preference::Auto),
        }
    }
}

/// An opened, usable keyring.
#[derive(Clone)]
pub struct Keyring {
    backend: Backend,
    store: Arc<CredentialStore>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("backend", &self.backend)
            .finish()
    }
}

/// What happened to one backend during selection (for `doctor` and error messages).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub backend: Backend,
    /// `None` when it worked.
    pub error: Option<String>,
}

/// The process-wide selection, made once.
static SELECTED: OnceLock<Result<Keyring, String>> = OnceLock::new();

/// The keyring this process uses: selected on first use (probing in `auto` mode), then cached.
pub fn selected() -> Result<Keyring, AuthError> {
    SELECTED
        .get_or_init(|| select().map_err(|e| e.to_string()))
        .clone()
        .map_err(AuthError::KeyringUnavailable)
}

/// Select a keyring now (no caching): honour `AIRTABLE_MCP_KEYRING`, else probe each candidate.
pub fn select() -> Result<Keyring, AuthError> {
    match Preference::from_env()? {
        Preference::Disabled => Err(AuthError::KeyringUnavailable(format!(
            "the keyring is disabled ({}=none)",
            env::AIRTABLE_MCP_KEYRING
        ))),
        Preference::Force(backend) => Keyring::open(backend),
        Preference::Auto => {
            let (found, attempts) = probe_all();
            found.ok_or_else(|| AuthError::KeyringUnavailable(describe_attempts(&attempts)))
        }
    }
}

/// Try every candidate backend with a real set/get/delete; return the first that works and what
/// happened to each one tried.
pub fn probe_all() -> (Option<Keyring>, Vec<Attempt>) {
    let mut attempts = Vec::new();
    for &backend in Backend::candidates() {
        match Keyring::open(backend).and_then(|k| k.probe().map(|()| k)) {
            Ok(k) => {
                attempts.push(Attempt {
                    backend,
                    error: None,
                });
                return (Some(k), attempts);
            }
            Err(e) => {
                tracing::debug!(backend = backend.name(), error = %e, "keyring backend unusable");
                attempts.push(Attempt {
                    backend,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    (None, attempts)
}

fn describe_attempts(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "this platform has no supported keyring".to_owned();
    }
    let parts: Vec<String> = attempts
        .iter()
        .map(|a| {
            format!(
                "{}: {}",
                a.backend.name(),
                a.error.as_deref().unwrap_or("usable")
            )
        })
        .collect();
    format!("no usable keyring ({})", parts.join("; "))
}

impl Keyring {
    /// Open a backend (no probe: a store that opens may still refuse every call).
    pub fn open(backend: Backend) -> Result<Keyring, AuthError> {
        let store = open_store(backend).map_err(|e| AuthError::Keyring {
            backend,
            op: "open",
            source: KeyringCause(e),
        })?;
        Ok(Keyring { backend, store })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn entry(&self, user: &str) -> Result<Entry, AuthError> {
        Entry::new_in_store(&self.store, &service(), user).map_err(|e| self.err("open entry", e))
    }

    fn err(&self, op: &'static str, e: keyring_core::Error) -> AuthError {
        AuthError::Keyring {
            backend: self.backend,
            op,
            source: KeyringCause(e),
        }
    }

    /// Write, read back and delete a throwaway entry. Ok means the keyring really works.
    pub fn probe(&self) -> Result<(), AuthError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let user = format!("probe-{}-{nanos}", std::process::id());
        let value = format!("probe-value-{nanos}");
        let entry = self.entry(&user)?;
        entry
            .set_password(&value)
            .map_err(|e| self.err("write", e))?;
        let read = entry.get_password();
        // Delete whatever happened, so no probe entry is left behind.
        let deleted = entry.delete_credential();
        let read = read.map_err(|e| self.err("read", e))?;
        if read != value {
            return Err(AuthError::KeyringMismatch {
                backend: self.backend,
            });
        }
        deleted.map_err(|e| self.err("delete", e))
    }

    /// Store `secret` under `user` (replacing any previous value).
    pub fn set(&self, user: &str, secret: &SecretString) -> Result<(), AuthError> {
        self.entry(user)?
            .set_password(secret.expose_secret())
            .map_err(|e| self.err("write", e))
    }

    /// Read the secret of `user`; `Ok(None)` when there is none.
    pub fn get(&self, user: &str) -> Result<Option<SecretString>, AuthError> {
        match self.entry(user)?.get_password() {
            Ok(s) => Ok(Some(SecretString::from(s))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.err("read", e)),
        }
    }

    /// Delete the entry of `user`; `Ok(false)` when there was none.
    pub fn remove(&self, user: &str) -> Result<bool, AuthError> {
        match self.entry(user)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.err("delete", e)),
        }
    }
}

/// A keyring error, kept as the source of [`AuthError::Keyring`]. Its `Display` and `Debug`
/// never show stored bytes (`BadEncoding` and `BadDataFormat` carry them).
pub struct KeyringCause(pub keyring_core::Error);

impl std::fmt::Display for KeyringCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_error(&self.0))
    }
}

impl std::fmt::Debug for KeyringCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use keyring_core::Error as E;
        match &self.0 {
            E::BadEncoding(_) => f.write_str("BadEncoding(<redacted>)"),
            E::BadDataFormat(_, _) => f.write_str("BadDataFormat(<redacted>)"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for KeyringCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            // The platform's own error (D-Bus, keyutils, Security framework...).
            keyring_core::Error::PlatformFailure(e) | keyring_core::Error::NoStorageAccess(e) => {
                Some(e.as_ref())
            }
            _ => None,
        }
    }
}

/// A keyring error as text that can never contain secret material.
fn describe_error(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(inner) => format!("platform failure: {inner}"),
        E::NoStorageAccess(inner) => format!("no access to the storage: {inner}"),
        E::NoEntry => "no such entry".to_owned(),
        E::BadEncoding(_) => "the stored value is not UTF-8".to_owned(),
        E::BadDataFormat(_, _) => "the stored value is malformed".to_owned(),
        E::BadStoreFormat(reason) => format!("the store is malformed: {reason}"),
        E::TooLong(name, len) => format!("{name} is longer than the platform limit of {len}"),
        E::Invalid(attr, reason) => format!("{attr} is invalid: {reason}"),
        E::Ambiguous(items) => format!(
            "{} entries match; remove the duplicates with the platform's keyring tool",
            items.len()
        ),
        E::NoDefaultStore => "no keyring store".to_owned(),
        E::NotSupportedByStore(what) => format!("not supported by this store: {what}"),
        _ => "unknown keyring error".to_owned(),
    }
}

fn open_store(backend: Backend) -> keyring_core::Result<Arc<CredentialStore>> {
    match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => {
            let s: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
            Ok(s)
        }
        #[cfg(target_os = "linux")]
        Backend::Keyutils => {
            let s: Arc<CredentialStore> = linux_keyutils_keyring_store::Store::new()?;
            Ok(s)
        }
        #[cfg(target_os = "macos")]
        Backend::Keychain => {
            let s: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
            Ok(s)
        }
        #[cfg(target_os = "windows")]
        Backend::WindowsCredentialManager => {
            let s: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
            Ok(s)
        }
        #[allow(unreachable_patterns)]
        other => Err(keyring_core::Error::NotSupportedByStore(format!(
            "{} is not available on this platform",
            other.name()
        ))),
    }
}

/// Check a profile name (see [`Profile`]): 1-64 characters of `A-Z a-z 0-9 - _ .`, and not a
/// reserved entry.
pub fn validate_profile(profile: &str) -> Result<(), AuthError> {
    Ok(profile::validate(profile)?)
}

/// Store the Airtable token of `profile` in the selected keyring; returns the backend used.
pub fn store(profile: &Profile, token: &SecretString) -> Result<Backend, AuthError> {
    let k = selected()?;
    k.set(profile, token)?;
    Ok(k.backend())
}

/// Load the Airtable token of `profile`: `Ok(Some((token, backend)))`, or `Ok(None)` when the
/// keyring works but holds nothing for this profile.
///
/// When the selected keyring has nothing, the platform's other backends are also read (in
/// `auto` mode only): a token stored by `auth login` from a shell without D-Bus lands in the
/// kernel keyring, and a server started later inside a desktop session must still find it.
pub fn load(profile: &Profile) -> Result<Option<(SecretString, Backend)>, AuthError> {
    let k = selected()?;
    if let Some(s) = k.get(profile)? {
        return Ok(Some((s, k.backend())));
    }
    Ok(others(k.backend())
        .into_iter()
        .find_map(|o| o.get(profile).ok().flatten().map(|s| (s, o.backend()))))
}

/// Delete the Airtable token of `profile` from the selected keyring (and, in `auto` mode, from
/// the other backends that hold one); `Ok(false)` when there was none.
pub fn delete(profile: &Profile) -> Result<bool, AuthError> {
    let k = selected()?;
    let mut removed = k.remove(profile)?;
    for o in others(k.backend()) {
        removed |= o.remove(profile).unwrap_or(false);
    }
    Ok(removed)
}

/// The other backends of this platform that open, in `auto` mode (none when one is forced).
fn others(selected: Backend) -> Vec<Keyring> {
    if !matches!(Preference::from_env(), Ok(Preference::Auto)) {
        return Vec::new();
    }
    Backend::candidates()
        .iter()
        .filter(|&&b| b != selected)
        .filter_map(|&b| Keyring::open(b).ok())
        .collect()
}

/// Store the HTTP transport's accepted bearer tokens (one a line in the entry).
pub fn store_http_auth_tokens(tokens: &[SecretString]) -> Result<Backend, AuthError> {
    let joined = tokens
        .iter()
        .map(|t| t.expose_secret().trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if joined.is_empty() {
        return Err(AuthError::InvalidToken("no bearer token given".to_owned()));
    }
    let k = selected()?;
    k.set(HTTP_AUTH_USER, &SecretString::from(joined))?;
    Ok(k.backend())
}

/// Load the HTTP transport's accepted bearer tokens; empty when none are stored.
pub fn load_http_auth_tokens() -> Result<Vec<SecretString>, AuthError> {
    let k = selected()?;
    Ok(match k.get(HTTP_AUTH_USER)? {
        Some(s) => split_tokens(s.expose_secret()),
        None => Vec::new(),
    })
}

/// Delete the HTTP transport's bearer tokens; `Ok(false)` when there were none.
pub fn delete_http_auth_tokens() -> Result<bool, AuthError> {
    selected()?.remove(HTTP_AUTH_USER)
}

/// Split a list of tokens separated by newlines or commas, trimming and dropping empty ones.
pub fn split_tokens(s: &str) -> Vec<SecretString> {
    s.split(['\n', ','])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_parsing() {
        assert_eq!(Preference::parse("").unwrap(), Preference::Auto);
        assert_eq!(Preference::parse("AUTO").unwrap(), Preference::Auto);
        assert_eq!(Preference::parse("none").unwrap(), Preference::Disabled);
        assert_eq!(
            Preference::parse("secret-service").unwrap(),
            Preference::Force(Backend::SecretService)
        );
        assert_eq!(
            Preference::parse(" keyutils ").unwrap(),
            Preference::Force(Backend::Keyutils)
        );
        let e = Preference::parse("vault").unwrap_err().to_string();
        assert!(e.contains("AIRTABLE_MCP_KEYRING"), "{e}");
        assert!(e.contains("vault"), "{e}");
    }

    #[test]
    fn profiles_are_validated() {
        validate_profile("work").unwrap();
        for bad in ["", "has space", HTTP_AUTH_USER, "probe-1"] {
            let e = validate_profile(bad).unwrap_err();
            assert!(matches!(e, AuthError::Profile(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn keyring_causes_never_show_stored_bytes() {
        let c = KeyringCause(keyring_core::Error::BadEncoding(b"patSECRET".to_vec()));
        assert!(!format!("{c:?} {c}").contains("83, 69, 67"), "{c:?}");
        let e = AuthError::Keyring {
            backend: Backend::Keyutils,
            op: "read",
            source: c,
        };
        assert!(std::error::Error::source(&e).is_some());
        assert!(!format!("{e:?}").contains("112, 97, 116"), "{e:?}");
    }

    #[test]
    fn token_lists_split() {
        let t = split_tokens(" a ,b\n\n c\r\n");
        let v: Vec<&str> = t.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(v, ["a", "b", "c"]);
    }
}
