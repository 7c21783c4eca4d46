//! `--help` snapshots of the main commands (plain files under tests/snapshots), and the README's
//! env var table generated from the registry in src/env.rs.
//!
//! After an intended change: `UPDATE_SNAPSHOTS=1 cargo test --test cli help::` rewrites both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_airtable-mcp");

fn updating() -> bool {
    std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compare `actual` with the file, or rewrite it under UPDATE_SNAPSHOTS=1.
fn check_file(path: &Path, actual: &str, what: &str) -> Option<String> {
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let first_diff = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    Some(format!(
        "{what} differs from {} (first difference at line {}):\n--- expected\n{}\n--- actual\n{}\n\
         (rerun with UPDATE_SNAPSHOTS=1 if the change is intended)",
        path.display(),
        first_diff + 1,
        expected.lines().nth(first_diff).unwrap_or("<end>"),
        actual.lines().nth(first_diff).unwrap_or("<end>"),
    ))
}

#[test]
fn help_snapshots() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["sandbox"],
        &["auth"],
        &["auth", "login"],
        &["auth", "status"],
        &["auth", "logout"],
        &["doctor"],
        &["setup"],
        &["tools"],
        &["health"],
        &["writes", "list"],
        &["writes", "undo"],
        &["import"],
    ];
    let mut failures = Vec::new();
    for args in commands {
        let mut cmd = Command::new(BIN);
        cmd.args(*args).arg("--help");
        // Stable output: fixed width, and no env value shown next to a flag.
        cmd.env("COLUMNS", "100");
        for (name, _) in airtable_mcp::env::ENV_VARS {
            cmd.env_remove(name);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?} --help failed: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let name = if args.is_empty() {
            "airtable-mcp".to_owned()
        } else {
            format!("airtable-mcp-{}", args.join("-"))
        };
        let path = root()
            .join("tests/snapshots")
            .join(format!("{name}.help.txt"));
        if let Some(f) = check_file(&path, &text, &format!("`{}` --help", args.join(" "))) {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn help_lists_every_env_var() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for (name, _) in airtable_mcp::env::ENV_VARS {
        assert!(text.contains(name), "--help does not mention {name}");
    }
}

/// The README table between the markers, generated from `env::ENV_VARS`.
fn env_table() -> String {
    let mut s = String::from("| Variable | Meaning |\n|---|---|\n");
    for (name, what) in airtable_mcp::env::ENV_VARS {
        s.push_str(&format!("| `{name}` | {} |\n", what.replace('|', "\\|")));
    }
    s
}

#[test]
fn readme_env_table_matches_the_registry() {
    const START: &str =
        "<!-- env-table:start (generated from src/env.rs by tests/cli/help.rs) -->\n";
    const END: &str = "<!-- env-table:end -->";
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the env table markers");
    };
    let wanted = format!("{}{START}{}{}", &readme[..a], env_table(), &readme[b..]);
    if let Some(f) = check_file(&path, &wanted, "README env var table") {
        panic!("{f}");
    }
}

/// `AIRTABLE_MCP_READ_ONLY` takes the usual boolean spellings (clap used to refuse `1`).
#[test]
fn read_only_env_takes_the_usual_spellings() {
    for (value, expected) in [("1", true), ("yes", true), ("true", true), ("0", false)] {
        let out = Command::new(BIN)
            .args(["serve", "--sandbox", "--toolsets", "all"])
            .env("AIRTABLE_MCP_CONFIG", "/dev/null")
            .env("AIRTABLE_MCP_READ_ONLY", value)
            .env("AIRTABLE_MCP_LOG", "info")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("read_only={expected}")),
            "AIRTABLE_MCP_READ_ONLY={value}: {stderr}"
        );
    }
}
