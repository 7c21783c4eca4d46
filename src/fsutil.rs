//! Writing files safely: the one helper every file the project writes goes through.
//!
//! [`write_atomic`] writes into a temporary file created exclusively (`O_EXCL`, random name,
//! never through a symlink: `tempfile::NamedTempFile::new_in`) in the target's directory,
//! fsyncs it, gives it the mode of the file it replaces (or the caller's mode for a new file),
//! and renames it over the target, then fsyncs the directory ([`write_in_dir`]: the same, relative
//! to an open directory handle). A crash leaves the old file or
//! the new one, never a half-written one; a symlink planted at the target is replaced, never
//! followed; a 0600 file stays 0600.

use std::io::Write;
use std::path::Path;

/// Replace (or create) `path` with `bytes`, atomically. `new_mode` is the Unix mode of a file
/// that does not exist yet (ignored elsewhere); an existing file keeps its own mode.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> std::io::Result<()> {
    write(path, bytes, new_mode, true)
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

/// Like [`write_atomic`] (or, without `replace`, a create that never overwrites), for the file `name` (one path component) of an open
/// directory: the temporary file is created exclusively in `dir` (random name, mode `new_mode`
/// on Unix), written, fsynced, given the mode of the regular file it replaces, then renamed over
/// `name` (`replace`) or hard-linked to it (else: `AlreadyExists` when anything is there, checked
/// by the link itself, so no race). A symlink at `name` is replaced (or refused), never followed.
/// Every operation is relative to `dir` (capability-style, `cap_std`), so nothing outside it can
/// be touched whatever `name` holds.
pub(crate) fn write_in_dir(
    dir: &cap_std::fs::Dir,
    name: &Path,
    bytes: &[u8],
    new_mode: u32,
    replace: bool,
) -> std::io::Result<()> {
    use std::path::Component;
    let mut parts = name.components();
    let (Some(Component::Normal(file_name)), None) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file of the directory", name.display()),
        ));
    };
    let keep = match dir.symlink_metadata(name) {
        Ok(m) if m.is_file() => Some(m.permissions()),
        Ok(m) if m.is_symlink() => None,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", name.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        opts.mode(new_mode & 0o777);
    }
    #[cfg(not(unix))]
    let _ = new_mode;
    let (tmp_name, mut tmp) = {
        let mut attempt = 0;
        loop {
            let candidate = std::path::PathBuf::from(format!(
                ".{}.{:016x}.tmp",
                file_name.to_string_lossy(),
                rand::random::<u64>()
            ));
            match dir.open_with(&candidate, &opts) {
                Ok(f) => break (candidate, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let written = (|| {
        tmp.write_all(bytes)?;
        tmp.flush()?;
        if let Some(perms) = keep {
            tmp.set_permissions(perms)?;
        }
        tmp.sync_all()?;
        drop(tmp);
        if replace {
            dir.rename(&tmp_name, dir, name)
        } else {
            dir.hard_link(&tmp_name, dir, name)?;
            dir.remove_file(&tmp_name)
        }
    })();
    if written.is_err() {
        let _ = dir.remove_file(&tmp_name);
    }
    written?;
    // Make the rename durable (best effort).
    if let Ok(d) = dir.try_clone() {
        let _ = d.into_std_file().sync_all();
    }
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
        write(&p, b"a,b\n", 0o600, false).unwrap();
        let e = write(&p, b"c,d\n", 0o600, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n");
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "precious").unwrap();
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            assert!(write(&link, b"x", 0o600, false).is_err());
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
    fn writes_in_an_open_directory_atomically_without_following_links() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let dir = cap_std::fs::Dir::open_ambient_dir(&root, cap_std::ambient_authority()).unwrap();
        let name = Path::new("out.csv");
        write_in_dir(&dir, name, b"one", 0o600, false).unwrap();
        assert_eq!(std::fs::read(root.join("out.csv")).unwrap(), b"one");
        #[cfg(unix)]
        assert_eq!(mode(&root.join("out.csv")), 0o600);
        let e = write_in_dir(&dir, name, b"two", 0o600, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join("out.csv"), std::fs::Permissions::from_mode(0o640))
                .unwrap();
        }
        write_in_dir(&dir, name, b"two", 0o600, true).unwrap();
        assert_eq!(std::fs::read(root.join("out.csv")).unwrap(), b"two");
        #[cfg(unix)]
        assert_eq!(
            mode(&root.join("out.csv")),
            0o640,
            "a replaced file keeps its mode"
        );
        for bad in ["../escape.csv", "sub/x.csv", "/etc/x.csv", ""] {
            assert!(
                write_in_dir(&dir, Path::new(bad), b"x", 0o600, true).is_err(),
                "{bad}"
            );
        }
        assert!(!outer.path().join("escape.csv").exists());
        #[cfg(unix)]
        {
            let victim = outer.path().join("victim");
            std::fs::write(&victim, "precious").unwrap();
            std::os::unix::fs::symlink(&victim, root.join("link.csv")).unwrap();
            let e = write_in_dir(&dir, Path::new("link.csv"), b"x", 0o600, false).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
            write_in_dir(&dir, Path::new("link.csv"), b"x", 0o600, true).unwrap();
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
            assert!(
                !std::fs::symlink_metadata(root.join("link.csv"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        // no temporary file is left behind
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), b"x", 0o600).is_err());
    }
}
