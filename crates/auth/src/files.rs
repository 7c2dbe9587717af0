//! Files that hold secrets: created owner-only (0700 folders, 0600 files) from the moment
//! they exist, never written first and narrowed afterwards.

use std::io::Write as _;
use std::path::Path;

/// Creates `dir` (and missing parents) as 0700, or narrows an existing one to 0700.
/// A folder has no content to leak between creation and `chmod`, so narrowing an
/// existing one (made by an older version) is safe.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Opens `path` for writing, creating it 0600 if missing (an existing file keeps its mode).
pub fn open_private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Writes `bytes` to a new or truncated 0600 file.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = open_private_file(path, true)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes sure a SQLite database file exists as 0600 before SQLite opens it. SQLite gives
/// its `-wal` and `-shm` files the mode of the database file, so they are 0600 too.
pub fn precreate_private_file(path: &Path) -> std::io::Result<()> {
    open_private_file(path, false).map(drop)
}
