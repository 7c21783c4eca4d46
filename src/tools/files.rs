//! Host file access, confined: the one way a tool touches the files of the machine running the
//! server is [`ExportDir`], the directory given by `--export-dir` (none by default: then no tool
//! reads or writes a file).
//!
//! A path given by a client is relative to that directory (an absolute path is accepted only
//! when it lies inside it). `..` components, paths outside, and symbolic links anywhere below the
//! directory (the file itself or a parent directory) are refused with a message saying what to
//! give instead. Every operation goes through a `cap_std::fs::Dir` handle opened on the directory,
//! so even a link planted between the check and the write cannot lead outside. Writes are
//! atomic (`fsutil::write_in_dir`: exclusive temporary file, then rename or link); a new file is
//! created with mode 0600 on Unix. The same rules hold over every transport: the flag is the
//! only way in.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, File};

use crate::tools::ToolError;
use crate::tools::handler::ServerOptions;

/// Mode of a new file: record data, readable by its owner only.
pub(crate) const NEW_FILE_MODE: u32 = 0o600;

/// The directory tools may read and write files in (`--export-dir`).
pub(crate) struct ExportDir {
    /// The directory, absolute and canonical (for messages and results).
    root: PathBuf,
    /// A handle every operation is relative to.
    dir: Dir,
    /// False under `--read-only`: files may be read, never written.
    writable: bool,
}

impl std::fmt::Debug for ExportDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportDir")
            .field("root", &self.root)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

/// Where a file goes: its parent directory (opened), its name, and its absolute path.
pub(crate) struct Target {
    parent: Dir,
    name: OsString,
    /// Absolute path, for results and messages.
    pub(crate) shown: PathBuf,
    /// A file is already there.
    pub(crate) exists: bool,
}

impl ExportDir {
    /// The server's export directory, or the refusal a tool shows when there is none. `tool`
    /// names the tool for the message.
    pub(crate) fn from_options(options: &ServerOptions, tool: &str) -> Result<Self, ToolError> {
        let Some(root) = &options.export_dir else {
            return Err(ToolError::Invalid(format!(
                "{tool} reads and writes files only inside the server's export directory, and this server has none. Leave out path (the result then carries the data inline), or ask the user to start the server with --export-dir DIR (or AIRTABLE_MCP_EXPORT_DIR)."
            )));
        };
        Self::open(root, !options.read_only)
    }

    /// Open `root` (an existing directory).
    pub(crate) fn open(root: &Path, writable: bool) -> Result<Self, ToolError> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|source| {
            ToolError::File {
                message: format!(
                    "cannot open the export directory {}: {source}. Ask the user to check --export-dir.",
                    root.display()
                ),
                source,
            }
        })?;
        Ok(ExportDir {
            root: root.to_path_buf(),
            dir,
            writable,
        })
    }

    /// The components of `path` below the directory, or why it is refused.
    fn relative(&self, path: &str) -> Result<Vec<OsString>, ToolError> {
        let given = Path::new(path);
        let invalid = |why: String| {
            ToolError::Invalid(format!(
                "path {path:?} {why}. Give a path relative to the export directory {}, e.g. export.csv or reports/export.csv.",
                self.root.display()
            ))
        };
        if path.trim().is_empty() {
            return Err(invalid("is empty".to_owned()));
        }
        let rel = if given.is_absolute() {
            given
                .strip_prefix(&self.root)
                .map_err(|_| invalid("is outside the export directory".to_owned()))?
        } else {
            given
        };
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(invalid(
                        "goes up with \"..\": files stay inside the export directory".to_owned(),
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid("is outside the export directory".to_owned()));
                }
            }
        }
        if parts.is_empty() {
            return Err(invalid(
                "names the export directory itself, not a file".to_owned(),
            ));
        }
        Ok(parts)
    }

    fn io_error(&self, what: &Path, source: std::io::Error) -> ToolError {
        ToolError::File {
            message: format!("cannot use {}: {source}", what.display()),
            source,
        }
    }

    /// Resolve `path` to its parent directory (every level a real directory, no symlink) and
    /// its file name (not a symlink, not a directory).
    pub(crate) fn target(&self, path: &str) -> Result<Target, ToolError> {
        let mut parts = self.relative(path)?;
        let name = parts.pop().unwrap_or_default();
        let mut shown = self.root.clone();
        let mut parent = self
            .dir
            .try_clone()
            .map_err(|e| self.io_error(&self.root, e))?;
        for part in parts {
            shown.push(&part);
            match parent.symlink_metadata(&part) {
                Ok(m) if m.is_symlink() => {
                    return Err(ToolError::Invalid(format!(
                        "{} is a symbolic link; files are written and read only through real directories inside the export directory {}.",
                        shown.display(),
                        self.root.display()
                    )));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ToolError::Invalid(format!(
                        "{} is not a directory.",
                        shown.display()
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ToolError::Invalid(format!(
                        "directory {} does not exist: choose an existing directory inside the export directory {}, or ask the user to create it.",
                        shown.display(),
                        self.root.display()
                    )));
                }
                Err(e) => return Err(self.io_error(&shown, e)),
            }
            parent = parent
                .open_dir(&part)
                .map_err(|e| self.io_error(&shown, e))?;
        }
        shown.push(&name);
        let exists = match parent.symlink_metadata(&name) {
            Ok(m) if m.is_symlink() => {
                return Err(ToolError::Invalid(format!(
                    "{} is a symbolic link; choose another file name.",
                    shown.display()
                )));
            }
            Ok(m) if m.is_dir() => {
                return Err(ToolError::Invalid(format!(
                    "{} is a directory: give a file path inside it, e.g. {}.",
                    shown.display(),
                    Path::new(path).join("export.csv").display()
                )));
            }
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(self.io_error(&shown, e)),
        };
        Ok(Target {
            parent,
            name,
            shown,
            exists,
        })
    }

    /// Check that `path` can be created (or replaced with `overwrite`) before any work is done.
    pub(crate) fn check_create(&self, path: &str, overwrite: bool) -> Result<Target, ToolError> {
        if !self.writable {
            return Err(ToolError::Invalid(
                "this server runs read-only (--read-only), so it writes no file. Leave out path to get the data inline.".to_owned(),
            ));
        }
        let target = self.target(path)?;
        if target.exists && !overwrite {
            return Err(ToolError::Invalid(format!(
                "{} already exists: pass overwrite=true to replace it, or choose another path.",
                target.shown.display()
            )));
        }
        Ok(target)
    }

    /// Write `bytes` to `path` atomically (a new file gets mode 0600; a replaced file keeps its
    /// mode). Without `overwrite`, an existing file is an error. Returns the absolute path.
    pub(crate) fn create(
        &self,
        path: &str,
        bytes: &[u8],
        overwrite: bool,
    ) -> Result<PathBuf, ToolError> {
        let target = self.check_create(path, overwrite)?;
        crate::fsutil::write_in_dir(
            &target.parent,
            Path::new(&target.name),
            bytes,
            NEW_FILE_MODE,
            overwrite,
        )
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                ToolError::Invalid(format!(
                    "{} already exists: pass overwrite=true to replace it, or choose another path.",
                    target.shown.display()
                ))
            } else {
                ToolError::File {
                    message: format!("cannot write {}: {source}", target.shown.display()),
                    source,
                }
            }
        })?;
        Ok(target.shown)
    }

    /// Open the regular file `path` for reading (same confinement; a symlink is refused). For
    /// the tools that will read files (imports, attachment uploads).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn open_file(&self, path: &str) -> Result<File, ToolError> {
        let target = self.target(path)?;
        if !target.exists {
            return Err(ToolError::Invalid(format!(
                "{} does not exist.",
                target.shown.display()
            )));
        }
        target
            .parent
            .open(&target.name)
            .map_err(|e| self.io_error(&target.shown, e))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    struct Fixture {
        outer: tempfile::TempDir,
        root: PathBuf,
    }

    fn fixture() -> Fixture {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("exports").canonicalize_or_create();
        Fixture { outer, root }
    }

    trait CreateDir {
        fn canonicalize_or_create(self) -> PathBuf;
    }

    impl CreateDir for PathBuf {
        fn canonicalize_or_create(self) -> PathBuf {
            std::fs::create_dir_all(&self).unwrap();
            self.canonicalize().unwrap()
        }
    }

    fn outside_files(f: &Fixture) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(f.outer.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn inside_paths_work_relative_or_absolute() {
        let f = fixture();
        std::fs::create_dir(f.root.join("sub")).unwrap();
        let d = ExportDir::open(&f.root, true).unwrap();
        assert_eq!(
            d.create("a.csv", b"1", false).unwrap(),
            f.root.join("a.csv")
        );
        assert_eq!(
            d.create("./sub/b.csv", b"2", false).unwrap(),
            f.root.join("sub/b.csv")
        );
        let abs = f.root.join("sub/c.csv");
        assert_eq!(d.create(abs.to_str().unwrap(), b"3", false).unwrap(), abs);
        let mut s = String::new();
        d.open_file("sub/b.csv")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "2");
        let e = d.create("a.csv", b"x", false).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        d.create("a.csv", b"x", true).unwrap();
        assert_eq!(std::fs::read(f.root.join("a.csv")).unwrap(), b"x");
    }

    #[test]
    fn hostile_paths_are_refused_and_nothing_is_written_outside() {
        let f = fixture();
        let before = outside_files(&f);
        let d = ExportDir::open(&f.root, true).unwrap();
        let outside = f.outer.path().join("outside.csv");
        for bad in [
            "../x.csv",
            "sub/../../x.csv",
            "/etc/x.csv",
            outside.to_str().unwrap(),
            "",
            ".",
            "missing/x.csv",
        ] {
            assert!(d.create(bad, b"x", true).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(outside_files(&f), before);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_below_the_directory_are_refused() {
        let f = fixture();
        let elsewhere = f.outer.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("x.csv"), "precious").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("x.csv"), f.root.join("x.csv")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, f.root.join("linked")).unwrap();
        // a link that stays inside is refused too
        std::fs::create_dir(f.root.join("real")).unwrap();
        std::os::unix::fs::symlink(f.root.join("real"), f.root.join("alias")).unwrap();
        let d = ExportDir::open(&f.root, true).unwrap();
        for bad in ["x.csv", "linked/new.csv", "linked/x.csv", "alias/new.csv"] {
            let e = d.create(bad, b"x", true).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{bad}: {e}");
        }
        assert!(d.open_file("x.csv").is_err());
        assert!(d.open_file("linked/x.csv").is_err());
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("x.csv")).unwrap(),
            "precious"
        );
        assert!(!elsewhere.join("new.csv").exists());
        assert!(!f.root.join("real/new.csv").exists());
    }

    #[test]
    fn no_directory_or_read_only_refuses_with_the_fix() {
        let f = fixture();
        let none = ServerOptions::default();
        let e = ExportDir::from_options(&none, "export_table_csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--export-dir DIR"), "{e}");
        let ro = ServerOptions {
            export_dir: Some(f.root.clone()),
            read_only: true,
            ..ServerOptions::default()
        };
        let d = ExportDir::from_options(&ro, "export_table_csv").unwrap();
        let e = d.create("a.csv", b"x", false).unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
        assert!(!f.root.join("a.csv").exists());
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        let d = ExportDir::open(&f.root, true).unwrap();
        let p = d.create("a.csv", b"1", false).unwrap();
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
