//! Writing files safely: the one helper every file the project writes goes through.
//!
//! [`write_atomic`] writes into a temporary file created exclusively (`O_EXCL`, random name,
//! never through a symlink: `tempfile::NamedTempFile::new_in`) in the target's directory,
//! fsyncs it, gives it the mode of the file it replaces (or the caller's mode for a new file),
//! and renames it over the target, then fsyncs the directory. A crash leaves the old file or
//! the new one, never a half-written one; a symlink planted at the target is replaced, never
//! followed; a 0600 file stays 0600.

use std::io::Write;
use std::path::Path;

/// Replace (or create) `path` with `bytes`, atomically. `new_mode` is the Unix mode of a file
/// that does not exist yet (ignored elsewhere); an existing file keeps its own mode.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> std::io::Result<()> {
    write(path, bytes, new_mode, true)
}

/// Create `path` with `bytes`, atomically, only if nothing is there yet (else `AlreadyExists`,
/// checked at the rename itself, so no race): for exports that must not overwrite.
pub(crate) fn create_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write(path, bytes, mode, false)
}

fn write(path: &Path, bytes: &[u8], new_mode: u32, replace: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        ));
    }
    // The mode to keep: the existing regular file's (a symlink's target's), else new_mode.
    let keep = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Some(m.permissions()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    match keep {
        Some(perms) => tmp.as_file().set_permissions(perms)?,
        None => set_new_mode(tmp.as_file(), new_mode)?,
    }
    tmp.as_file().sync_all()?;
    if replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn set_new_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
}

#[cfg(not(unix))]
fn set_new_mode(_file: &std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Make the rename durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_mode_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, b"new", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(mode(&p), 0o600);
        // a new file gets the caller's mode
        let q = dir.path().join("new.json");
        write_atomic(&q, b"x", 0o640).unwrap();
        assert_eq!(mode(&q), 0o640);
        // no temporary file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let p = dir.path().join("config.json");
        // every temp name a fixed-name writer could have used, planted as symlinks
        for i in 0..64 {
            let _ = std::os::unix::fs::symlink(
                &victim,
                dir.path().join(format!("config.json.tmp-{i}")),
            );
        }
        std::os::unix::fs::symlink(
            &victim,
            dir.path()
                .join(format!("config.json.tmp-{}", std::process::id())),
        )
        .unwrap_or(());
        write_atomic(&p, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}");
        // a symlink at the target itself is replaced by the new file, its target untouched
        let link = dir.path().join("linked.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn create_refuses_an_existing_file_or_link() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("export.csv");
        create_atomic(&p, b"a,b\n", 0o600).unwrap();
        let e = create_atomic(&p, b"c,d\n", 0o600).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n");
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "precious").unwrap();
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            assert!(create_atomic(&link, b"x", 0o600).is_err());
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        }
        // no temporary file is left behind
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                n.to_string_lossy().starts_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), b"x", 0o600).is_err());
    }
}
