//! The OAuth store of `serve --http --oauth`: one SQLite file (created 0600).
//!
//! - `clients`: registered MCP clients (DCR) and their redirect URIs.
//! - `tokens`: OUR access and refresh tokens, by SHA-256 hash only (the tokens themselves are
//!   never stored), with user, client, scope, resource (audience), expiry, revocation and the
//!   grant family (a refresh chain: reuse of a rotated refresh token revokes the family).
//! - `grants`: each user's Airtable grant (access + refresh token, expiry), encrypted with
//!   ChaCha20-Poly1305 (random 96-bit nonce per write, the user ID as associated data), the key
//!   from `AIRTABLE_MCP_OAUTH_KEY` or the keyring.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::OAuthError;

/// Keyring entry holding the store key when `AIRTABLE_MCP_OAUTH_KEY` is not set.
pub const KEYRING_ENTRY: &str = "oauth-store-key";

/// The 32-byte store key. `Debug` never shows it.
#[derive(Clone)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(***)")
    }
}

impl StoreKey {
    /// From standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, OAuthError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| OAuthError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| OAuthError::BadKey)?;
        Ok(Self(key))
    }

    /// `AIRTABLE_MCP_OAUTH_KEY`, else the keyring entry (generated and stored on first use).
    pub fn resolve() -> Result<Self, OAuthError> {
        use base64::Engine as _;
        if let Ok(v) = std::env::var(crate::env::AIRTABLE_MCP_OAUTH_KEY)
            && !v.trim().is_empty()
        {
            return Self::from_base64(&v);
        }
        let ring = crate::auth::keyring::selected()?;
        if let Some(s) = ring.get(KEYRING_ENTRY)? {
            return Self::from_base64(s.expose_secret());
        }
        let key: [u8; 32] = rand::random();
        let text = base64::engine::general_purpose::STANDARD.encode(key);
        ring.set(KEYRING_ENTRY, &SecretString::from(text))?;
        Ok(Self(key))
    }

    #[cfg(test)]
    pub fn for_tests(byte: u8) -> Self {
        Self([byte; 32])
    }
}

/// A user's Airtable grant (decrypted).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct AirtableGrant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub access_expires: i64,
    pub scope: String,
}

impl std::fmt::Debug for AirtableGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirtableGrant")
            .field("access_expires", &self.access_expires)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A registered MCP client.
#[derive(Debug, Clone)]
pub struct McpClient {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
}

/// What one of our tokens stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    /// Unix seconds.
    pub expires: i64,
    pub revoked: bool,
    pub family: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// SHA-256 of one of our tokens: the only form in which it is stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The store (one connection behind a mutex; every operation is a short statement).
pub struct Store {
    conn: Mutex<Connection>,
    cipher: ChaCha20Poly1305,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Open (or create, mode 0600, with its directory) the store at `path`.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, OAuthError> {
        let io = |source| OAuthError::StoreFile {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        {
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path).map_err(io)?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS clients (
                 client_id TEXT PRIMARY KEY, client_name TEXT, redirect_uris TEXT NOT NULL,
                 created INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS tokens (
                 hash BLOB PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT NOT NULL,
                 client_id TEXT NOT NULL, scope TEXT NOT NULL, resource TEXT NOT NULL,
                 expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
                 family TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS tokens_family ON tokens(family);
             CREATE TABLE IF NOT EXISTS grants (
                 user_id TEXT PRIMARY KEY, nonce BLOB NOT NULL, sealed BLOB NOT NULL,
                 updated INTEGER NOT NULL);",
        )?;
        let cipher = ChaCha20Poly1305::new_from_slice(&key.0).map_err(|_| OAuthError::BadKey)?;
        Ok(Self {
            conn: Mutex::new(conn),
            cipher,
            path: path.to_owned(),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add_client(&self, c: &McpClient) -> Result<(), OAuthError> {
        let uris = serde_json::to_string(&c.redirect_uris)?;
        self.conn().execute(
            "INSERT INTO clients (client_id, client_name, redirect_uris, created) VALUES (?1, ?2, ?3, ?4)",
            params![c.client_id, c.client_name, uris, now()],
        )?;
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Result<Option<McpClient>, OAuthError> {
        let row: Option<(Option<String>, String)> = self
            .conn()
            .query_row(
                "SELECT client_name, redirect_uris FROM clients WHERE client_id = ?1",
                params![client_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((client_name, uris)) => Ok(Some(McpClient {
                client_id: client_id.to_owned(),
                client_name,
                redirect_uris: serde_json::from_str(&uris)?,
            })),
        }
    }

    /// Store one of our tokens (by hash).
    pub fn put_token(&self, token: &str, rec: &TokenRecord) -> Result<(), OAuthError> {
        self.conn().execute(
            "INSERT INTO tokens (hash, kind, user_id, client_id, scope, resource, expires, revoked, family)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                token_hash(token),
                rec.kind.as_str(),
                rec.user_id,
                rec.client_id,
                rec.scope,
                rec.resource,
                rec.expires,
                rec.revoked,
                rec.family
            ],
        )?;
        Ok(())
    }

    pub fn token(&self, token: &str) -> Result<Option<TokenRecord>, OAuthError> {
        let rec = self
            .conn()
            .query_row(
                "SELECT kind, user_id, client_id, scope, resource, expires, revoked, family
                 FROM tokens WHERE hash = ?1",
                params![token_hash(token)],
                |r| {
                    let kind: String = r.get(0)?;
                    Ok(TokenRecord {
                        kind: if kind == "refresh" {
                            TokenKind::Refresh
                        } else {
                            TokenKind::Access
                        },
                        user_id: r.get(1)?,
                        client_id: r.get(2)?,
                        scope: r.get(3)?,
                        resource: r.get(4)?,
                        expires: r.get(5)?,
                        revoked: r.get(6)?,
                        family: r.get(7)?,
                    })
                },
            )
            .optional()?;
        Ok(rec)
    }

    /// Forget tokens expired more than a day ago (revoked or not: they can no longer be used).
    pub fn purge_expired(&self) -> Result<usize, OAuthError> {
        Ok(self.conn().execute(
            "DELETE FROM tokens WHERE expires < ?1",
            params![now() - 86_400],
        )?)
    }

    /// Revoke one token; returns whether it existed.
    pub fn revoke_token(&self, token: &str) -> Result<bool, OAuthError> {
        let n = self.conn().execute(
            "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
            params![token_hash(token)],
        )?;
        Ok(n > 0)
    }

    /// Revoke every token of a grant family (a refresh chain and its access tokens).
    pub fn revoke_family(&self, family: &str) -> Result<(), OAuthError> {
        self.conn().execute(
            "UPDATE tokens SET revoked = 1 WHERE family = ?1",
            params![family],
        )?;
        Ok(())
    }

    /// Store (replace) a user's Airtable grant, encrypted.
    pub fn put_grant(&self, user_id: &str, grant: &AirtableGrant) -> Result<(), OAuthError> {
        let plain = zeroizing(serde_json::to_vec(grant)?);
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain.0,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| OAuthError::Crypto)?;
        self.conn().execute(
            "INSERT INTO grants (user_id, nonce, sealed, updated) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(user_id) DO UPDATE SET nonce = excluded.nonce, sealed = excluded.sealed,
             updated = excluded.updated",
            params![user_id, nonce_bytes.to_vec(), sealed, now()],
        )?;
        Ok(())
    }

    /// A user's Airtable grant, decrypted (`Err(Crypto)` with another key or a tampered row).
    pub fn grant(&self, user_id: &str) -> Result<Option<AirtableGrant>, OAuthError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn()
            .query_row(
                "SELECT nonce, sealed FROM grants WHERE user_id = ?1",
                params![user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((nonce, sealed)) = row else {
            return Ok(None);
        };
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| OAuthError::Crypto)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| OAuthError::Crypto)?;
        let plain = zeroizing(plain);
        Ok(Some(serde_json::from_slice(&plain.0)?))
    }

    pub fn delete_grant(&self, user_id: &str) -> Result<(), OAuthError> {
        self.conn()
            .execute("DELETE FROM grants WHERE user_id = ?1", params![user_id])?;
        Ok(())
    }
}

/// Plaintext bytes overwritten when dropped.
struct Zeroizing(Vec<u8>);

fn zeroizing(v: Vec<u8>) -> Zeroizing {
    Zeroizing(v)
}

impl Drop for Zeroizing {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // A volatile-free best effort: the compiler may not elide writes to memory it frees
            // right after through the allocator call.
            *b = 0;
        }
        std::hint::black_box(&self.0);
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> AirtableGrant {
        AirtableGrant {
            access_token: "oaaAIRTABLEACCESS0123456789".into(),
            refresh_token: Some("oarAIRTABLEREFRESH0123456789".into()),
            access_expires: now() + 3600,
            scope: "data.records:read".into(),
        }
    }

    #[test]
    fn grants_are_encrypted_at_rest_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("oauth.sqlite3");
        let store = Store::open(&path, &StoreKey::for_tests(7)).unwrap();
        store.put_grant("usrA", &grant()).unwrap();
        store
            .put_token(
                "our-access-token-plaintext",
                &TokenRecord {
                    kind: TokenKind::Access,
                    user_id: "usrA".into(),
                    client_id: "c".into(),
                    scope: "mcp".into(),
                    resource: "http://x/mcp".into(),
                    expires: now() + 60,
                    revoked: false,
                    family: "f".into(),
                },
            )
            .unwrap();
        assert_eq!(
            store.grant("usrA").unwrap().unwrap().access_token,
            grant().access_token
        );
        drop(store);
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(path.with_extension("sqlite3-wal")) {
            bytes.extend(wal);
        }
        let hay = String::from_utf8_lossy(&bytes);
        for secret in [
            "AIRTABLEACCESS",
            "AIRTABLEREFRESH",
            "our-access-token-plaintext",
        ] {
            assert!(!hay.contains(secret), "{secret} is in the store file");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Another key cannot read it; the right one can, after reopening.
        let other = Store::open(&path, &StoreKey::for_tests(8)).unwrap();
        assert!(matches!(other.grant("usrA"), Err(OAuthError::Crypto)));
        let same = Store::open(&path, &StoreKey::for_tests(7)).unwrap();
        assert!(same.grant("usrA").unwrap().is_some());
        assert!(same.token("our-access-token-plaintext").unwrap().is_some());
    }

    #[test]
    fn a_sealed_grant_is_bound_to_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &StoreKey::for_tests(1)).unwrap();
        store.put_grant("usrA", &grant()).unwrap();
        // Copy A's sealed row to B: the associated data (user ID) no longer matches.
        store
            .conn()
            .execute(
                "INSERT INTO grants (user_id, nonce, sealed, updated)
                 SELECT 'usrB', nonce, sealed, updated FROM grants WHERE user_id = 'usrA'",
                [],
            )
            .unwrap();
        assert!(matches!(store.grant("usrB"), Err(OAuthError::Crypto)));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(StoreKey::from_base64("AAAA").is_err());
        assert!(StoreKey::from_base64("not base64!").is_err());
        use base64::Engine as _;
        let ok = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        assert!(StoreKey::from_base64(&ok).is_ok());
    }
}
