//! `airtable-mcp setup <client>`: add this server to an MCP client's config file.
//!
//! The entry points at this binary's absolute path and runs `serve` (with `--profile P` when
//! given). Everything else in the file is kept; the previous file is copied to
//! `<file>.bak-<UTC timestamp>` first; a missing file (and its directory) is created. No token
//! is ever written: the server reads it from the keyring or the environment.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::AuthError;
use crate::cli::{SetupArgs, SetupClient};

/// The name of our entry in the client's server map.
pub const ENTRY_NAME: &str = "airtable";

fn file_error(path: &Path, reason: impl std::fmt::Display) -> AuthError {
    AuthError::ClientConfig {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// What we know of each MCP client.
impl SetupClient {
    /// Every client, in display order.
    pub const ALL: [SetupClient; 4] = [
        SetupClient::ClaudeDesktop,
        SetupClient::ClaudeCode,
        SetupClient::Cursor,
        SetupClient::Vscode,
    ];

    /// Human name.
    pub fn display_name(self) -> &'static str {
        match self {
            SetupClient::ClaudeDesktop => "Claude Desktop",
            SetupClient::ClaudeCode => "Claude Code",
            SetupClient::Cursor => "Cursor",
            SetupClient::Vscode => "VS Code",
        }
    }

    /// The CLI value (`claude-desktop`, ...).
    pub fn cli_name(self) -> &'static str {
        match self {
            SetupClient::ClaudeDesktop => "claude-desktop",
            SetupClient::ClaudeCode => "claude-code",
            SetupClient::Cursor => "cursor",
            SetupClient::Vscode => "vscode",
        }
    }

    /// The key holding the server map: `servers` for VS Code, `mcpServers` elsewhere.
    pub fn servers_key(self) -> &'static str {
        match self {
            SetupClient::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    /// The user-level config file on this platform.
    ///
    /// - Claude Desktop: `<config dir>/Claude/claude_desktop_config.json` (macOS
    ///   `~/Library/Application Support/Claude`, Windows `%APPDATA%\Claude`, Linux `~/.config/Claude`)
    /// - Claude Code: `~/.claude.json` (user scope)
    /// - Cursor: `~/.cursor/mcp.json`
    /// - VS Code: `<config dir>/Code/User/mcp.json`
    pub fn default_path(self) -> Option<PathBuf> {
        match self {
            SetupClient::ClaudeDesktop => {
                dirs::config_dir().map(|d| d.join("Claude").join("claude_desktop_config.json"))
            }
            SetupClient::ClaudeCode => dirs::home_dir().map(|d| d.join(".claude.json")),
            SetupClient::Cursor => dirs::home_dir().map(|d| d.join(".cursor").join("mcp.json")),
            SetupClient::Vscode => {
                dirs::config_dir().map(|d| d.join("Code").join("User").join("mcp.json"))
            }
        }
    }

    /// The server entry for this client.
    pub fn entry(self, exe: &Path, profile: Option<&str>) -> Value {
        let mut args = vec![Value::from("serve")];
        if let Some(p) = profile {
            args.push(Value::from("--profile"));
            args.push(Value::from(p));
        }
        let command = Value::from(exe.to_string_lossy().into_owned());
        match self {
            SetupClient::ClaudeCode | SetupClient::Vscode => {
                json!({"type": "stdio", "command": command, "args": args})
            }
            SetupClient::ClaudeDesktop | SetupClient::Cursor => {
                json!({"command": command, "args": args})
            }
        }
    }

    /// `{"<servers key>": {"airtable": entry}}`: what `--print` shows.
    pub fn snippet(self, exe: &Path, profile: Option<&str>) -> Value {
        let mut servers = Map::new();
        servers.insert(ENTRY_NAME.to_owned(), self.entry(exe, profile));
        let mut top = Map::new();
        top.insert(self.servers_key().to_owned(), Value::Object(servers));
        Value::Object(top)
    }
}

/// What [`merge_into_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    pub path: PathBuf,
    /// The copy of the previous file, when there was one.
    pub backup: Option<PathBuf>,
    /// The file did not exist and was created.
    pub created: bool,
    /// An `airtable` entry existed and was replaced.
    pub replaced: bool,
    /// The file already held exactly this entry; nothing was written.
    pub unchanged: bool,
}

/// Mode of a client config that `setup` creates.
const NEW_CONFIG_MODE: u32 = 0o600;

/// The Unix mode of the file at `path` (for its backup), else [`NEW_CONFIG_MODE`].
fn original_mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            return m.permissions().mode() & 0o777;
        }
    }
    let _ = path;
    NEW_CONFIG_MODE
}

/// Merge `entry` under `<servers_key>.airtable` of the JSON file at `path`, keeping everything
/// else; back the old file up first; create the file when it is missing.
pub fn merge_into_file(
    path: &Path,
    servers_key: &str,
    entry: Value,
) -> Result<MergeOutcome, AuthError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_error(path, format!("cannot read it: {e}"))),
    };
    let mut root: Value = match &existing {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str(text).map_err(|e| {
                file_error(
                    path,
                    format!(
                        "not valid JSON ({e}); fix it by hand, or add the entry printed by --print yourself"
                    ),
                )
            })?
        }
        _ => Value::Object(Map::new()),
    };
    let Value::Object(top) = &mut root else {
        return Err(file_error(
            path,
            "the top level is not a JSON object; fix it by hand or use --print",
        ));
    };
    let servers = top
        .entry(servers_key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(file_error(
            path,
            format!("\"{servers_key}\" is not a JSON object; fix it by hand or use --print"),
        ));
    };
    let previous = servers.insert(ENTRY_NAME.to_owned(), entry.clone());
    let unchanged = previous.as_ref() == Some(&entry);
    let replaced = previous.is_some() && !unchanged;
    if unchanged {
        return Ok(MergeOutcome {
            path: path.to_owned(),
            backup: None,
            created: false,
            replaced: false,
            unchanged: true,
        });
    }

    let write_err = |e: std::io::Error| file_error(path, format!("cannot write it: {e}"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    // Every write goes through fsutil: exclusive random temp file in the same directory,
    // fsync, rename; the file (and its backup) keep the original's mode (a 0600 config stays
    // 0600), a new one is 0600, and no planted symlink is ever followed.
    let backup = match &existing {
        Some(old) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".bak-{stamp}"));
            let backup = PathBuf::from(name);
            let mode = original_mode(path);
            crate::fsutil::write_atomic(&backup, old.as_bytes(), mode)
                .map_err(|e| file_error(path, format!("cannot back it up: {e}")))?;
            Some(backup)
        }
        None => None,
    };
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| file_error(path, e))?;
    text.push('\n');
    crate::fsutil::write_atomic(path, text.as_bytes(), NEW_CONFIG_MODE).map_err(write_err)?;
    Ok(MergeOutcome {
        path: path.to_owned(),
        backup,
        created: existing.is_none(),
        replaced,
        unchanged: false,
    })
}

/// Whether a client config file mentions this server: an `airtable` entry, or any entry whose
/// command is an `airtable-mcp` binary. `None` when the file is absent or unreadable as JSON.
pub fn find_entry(client: SetupClient, path: &Path) -> Option<Result<Option<String>, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let root: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Some(Err(format!("not valid JSON: {e}"))),
    };
    let Some(servers) = root.get(client.servers_key()).and_then(Value::as_object) else {
        return Some(Ok(None));
    };
    let found = servers.iter().find(|(name, v)| {
        name.as_str() == ENTRY_NAME
            || v.get("command")
                .and_then(Value::as_str)
                .map(|c| {
                    Path::new(c)
                        .file_stem()
                        .is_some_and(|s| s.to_string_lossy() == "airtable-mcp")
                })
                .unwrap_or(false)
    });
    Some(Ok(found.map(|(name, _)| name.clone())))
}

/// This binary's absolute path.
pub fn current_exe() -> Result<PathBuf, AuthError> {
    let exe = std::env::current_exe()
        .map_err(|e| AuthError::Internal(format!("cannot find this program's path: {e}")))?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

/// `airtable-mcp setup <client> [--print] [--profile P] [--config-path FILE]`.
pub async fn run(args: SetupArgs) -> anyhow::Result<ExitCode> {
    if let Some(p) = &args.profile {
        super::keyring::validate_profile(p)?;
    }
    let exe = current_exe()?;
    let client = args.client;
    if args.print {
        let snippet = client.snippet(&exe, args.profile.as_deref());
        println!("{}", serde_json::to_string_pretty(&snippet)?);
        return Ok(ExitCode::SUCCESS);
    }
    let path = match args.config_path.clone() {
        Some(p) => p,
        None => client.default_path().ok_or_else(|| {
            AuthError::Internal(format!(
                "cannot find the config directory of {} on this platform; pass --config-path FILE",
                client.display_name()
            ))
        })?,
    };
    let entry = client.entry(&exe, args.profile.as_deref());
    let servers_key = client.servers_key();
    let p = path.clone();
    let outcome = tokio::task::spawn_blocking(move || merge_into_file(&p, servers_key, entry))
        .await
        .context("setup task failed")??;
    let name = client.display_name();
    if outcome.unchanged {
        println!(
            "{} already runs this airtable-mcp ({}); nothing to change.",
            name,
            outcome.path.display()
        );
    } else {
        let verb = if outcome.created {
            "Created"
        } else if outcome.replaced {
            "Replaced the airtable entry in"
        } else {
            "Added the airtable server to"
        };
        println!("{verb} {}.", outcome.path.display());
        if let Some(b) = &outcome.backup {
            println!("Backup of the previous file: {}", b.display());
        }
    }
    println!(
        "The server runs `{} serve{}` and reads the token from the OS keyring \
         (`airtable-mcp auth login`) or AIRTABLE_API_KEY.",
        exe.display(),
        args.profile
            .as_deref()
            .map(|p| format!(" --profile {p}"))
            .unwrap_or_default()
    );
    println!("Restart {name}, then ask it to list your Airtable bases.");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_per_client() {
        let exe = Path::new("/opt/bin/airtable-mcp");
        let e = SetupClient::ClaudeDesktop.entry(exe, Some("work"));
        assert_eq!(
            e,
            json!({"command": "/opt/bin/airtable-mcp", "args": ["serve", "--profile", "work"]})
        );
        let s = SetupClient::Vscode.snippet(exe, None);
        assert_eq!(
            s,
            json!({"servers": {"airtable": {"type": "stdio", "command": "/opt/bin/airtable-mcp", "args": ["serve"]}}})
        );
        let s = SetupClient::Cursor.snippet(exe, None);
        assert!(s.get("mcpServers").is_some());
    }

    #[test]
    fn merge_keeps_other_servers_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        let before = json!({
            "globalShortcut": "Ctrl+Space",
            "mcpServers": {"github": {"command": "gh-mcp", "args": ["--x"], "env": {"A": "1"}}}
        });
        std::fs::write(&path, serde_json::to_string_pretty(&before).unwrap()).unwrap();
        let entry = SetupClient::ClaudeDesktop.entry(Path::new("/x/airtable-mcp"), None);
        let out = merge_into_file(&path, "mcpServers", entry.clone()).unwrap();
        assert!(!out.created && !out.replaced && !out.unchanged);
        let backup = out.backup.unwrap();
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
        assert_eq!(saved, before);
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after["globalShortcut"], "Ctrl+Space");
        assert_eq!(
            after["mcpServers"]["github"],
            before["mcpServers"]["github"]
        );
        assert_eq!(after["mcpServers"]["airtable"], entry);
        // Key order kept: the existing server stays first.
        let keys: Vec<&String> = after["mcpServers"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["github", "airtable"]);

        // Same entry again: nothing written, no new backup.
        let again = merge_into_file(&path, "mcpServers", entry).unwrap();
        assert!(again.unchanged && again.backup.is_none());
        assert_eq!(
            find_entry(SetupClient::ClaudeDesktop, &path),
            Some(Ok(Some("airtable".to_owned())))
        );
    }

    #[cfg(unix)]
    #[test]
    fn merge_keeps_a_private_config_private_and_follows_no_planted_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        std::fs::write(&path, r#"{"mcpServers": {}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The temp name the old code used (predictable), planted as a symlink to a victim.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let mut planted = path.as_os_str().to_owned();
        planted.push(format!(".tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        let out = merge_into_file(&path, "mcpServers", json!({"command": "c"})).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "the rewritten config must stay 0600");
        assert_eq!(mode(&out.backup.unwrap()), 0o600, "so must its backup");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["mcpServers"]["airtable"]["command"], "c");
        // A new config is private too.
        let fresh = dir.path().join("new.json");
        merge_into_file(&fresh, "servers", json!({"command": "c"})).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn merge_creates_missing_file_and_refuses_non_objects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("mcp.json");
        let out = merge_into_file(&path, "servers", json!({"command": "c"})).unwrap();
        assert!(out.created && out.backup.is_none());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v, json!({"servers": {"airtable": {"command": "c"}}}));

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1,2]").unwrap();
        let e = merge_into_file(&bad, "mcpServers", json!({})).unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
        std::fs::write(&bad, "{ // comment\n}").unwrap();
        let e = merge_into_file(&bad, "mcpServers", json!({})).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        std::fs::write(&bad, "{\"mcpServers\": []}").unwrap();
        let e = merge_into_file(&bad, "mcpServers", json!({})).unwrap_err();
        assert!(e.to_string().contains("mcpServers"), "{e}");
        // The refused file is untouched.
        assert_eq!(
            std::fs::read_to_string(&bad).unwrap(),
            "{\"mcpServers\": []}"
        );
    }
}
