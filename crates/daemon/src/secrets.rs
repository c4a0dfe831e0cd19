//! Remembered backup passwords: in the OS keyring (the freedesktop Secret Service on Linux —
//! gnome-keyring, KeePassXC, KWallet …), or, only when the user asks for it, in a file only
//! they can read under the config folder.
//!
//! Why: an encrypted backup needs its password for every `ls`/`extract`/`restore`, and a
//! daemon has nobody to ask. The keyring keeps it encrypted at rest and unlocked with the
//! login session. A headless server has no keyring; a 0600 file is the honest fallback there,
//! but it is weaker (anyone who can read the owner's files reads the password), so it is never
//! used unless the user chose it (`iosnap password remember --file-store`). Passwords are never
//! logged and are wiped from memory when dropped.
//!
//! Keyring items carry the attributes `application=iosnap`, `kind=backup-password` and
//! `udid=<lowercase UDID>`, so `secret-tool search application iosnap` finds them.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use iosnap_store::ConfigDir;
use secret_service::{EncryptionType, SecretService};
use zeroize::Zeroizing;

/// A password that is wiped from memory when dropped.
pub type Password = Zeroizing<String>;

/// Environment variable that turns keyring use off (`off`): for scripts and tests that must
/// not touch the user's keyring, and for machines whose keyring misbehaves.
pub const ENV_KEYRING: &str = "IOSNAP_KEYRING";

/// Folder (under the config folder) of the opt-in password files.
pub const FILE_STORE_DIR: &str = "passwords";

const APPLICATION: &str = "iosnap";
const KIND: &str = "backup-password";

/// Why a password could not be looked up, stored or removed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// There is no keyring to talk to (no D-Bus session bus, or nothing on it that provides
    /// the Secret Service).
    #[error("no OS keyring is available: {why}")]
    Unavailable {
        /// What is missing, in words.
        why: String,
    },
    /// The keyring answered with an error.
    #[error("the OS keyring failed while {action}: {detail}")]
    Keyring {
        /// What we were doing (`looking up the password of …`).
        action: String,
        /// The keyring's error.
        detail: String,
    },
    /// The keyring is locked and unlocking it was not allowed here (no terminal, or the
    /// daemon) or was dismissed.
    #[error(
        "the OS keyring is locked; unlock it (log in to the desktop, or open Seahorse) and try again"
    )]
    Locked,
    /// The keyring did not answer in time (typically: an unlock prompt nobody answers).
    #[error("the OS keyring did not answer within {secs} s while {action}")]
    Timeout {
        /// What we were doing.
        action: String,
        /// The limit.
        secs: u64,
    },
    /// A password file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A password file (or its folder) is not private to its owner, so it is not trusted.
    #[error("{path}: not used: {why}")]
    Insecure {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A stored password is not UTF-8 (someone else wrote it).
    #[error("the password stored for {udid} in {source_name} is not valid UTF-8")]
    NotUtf8 {
        /// The device.
        udid: String,
        /// Where it was stored.
        source_name: String,
    },
    /// The device identifier cannot name a keyring item or a file.
    #[error("{0:?} is not a device identifier")]
    BadUdid(String),
}

/// Where a password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The OS keyring (Secret Service).
    Keyring,
    /// An owner-only file (opt-in).
    File(PathBuf),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Keyring => f.write_str("the OS keyring (Secret Service)"),
            Backend::File(p) => write!(f, "the file {}", p.display()),
        }
    }
}

/// The remembered passwords of one user: the keyring plus the opt-in file store.
#[derive(Debug, Clone)]
pub struct PasswordStore {
    files: PathBuf,
    keyring: bool,
    unlock_prompt: bool,
    timeout: Duration,
}

fn check_udid(udid: &str) -> Result<String, SecretError> {
    let ok = !udid.is_empty()
        && udid.len() <= 64
        && udid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(udid.to_ascii_lowercase())
    } else {
        Err(SecretError::BadUdid(udid.to_string()))
    }
}

impl PasswordStore {
    /// The store of the user whose settings are in `config`: keyring on unless
    /// `IOSNAP_KEYRING=off`, no keyring unlock prompts (see [`PasswordStore::unlock_prompt`]).
    pub fn new(config: &ConfigDir) -> PasswordStore {
        let keyring = !std::env::var(ENV_KEYRING).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        PasswordStore {
            files: config.path().join(FILE_STORE_DIR),
            keyring,
            unlock_prompt: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// Whether the keyring may be asked to unlock itself (it then shows its own password
    /// dialog on the desktop). Interactive commands allow it; the daemon never does, since
    /// nobody may be there to answer.
    pub fn unlock_prompt(mut self, allow: bool) -> PasswordStore {
        self.unlock_prompt = allow;
        self
    }

    /// Uses the keyring or not (the file store is always consulted).
    pub fn keyring(mut self, on: bool) -> PasswordStore {
        self.keyring = on;
        self
    }

    /// Whether the keyring is consulted.
    pub fn uses_keyring(&self) -> bool {
        self.keyring
    }

    /// The opt-in file of `udid`.
    pub fn file_path(&self, udid: &str) -> Result<PathBuf, SecretError> {
        Ok(self.files.join(check_udid(udid)?))
    }

    /// The remembered password of `udid` and where it came from: the keyring first, then the
    /// opt-in file. `Ok(None)` when neither has one — including when there is no keyring at
    /// all (that is the normal state of a server, not an error). Other keyring errors are
    /// returned only when the file store has nothing either.
    pub fn lookup(&self, udid: &str) -> Result<Option<(Password, Backend)>, SecretError> {
        let key = check_udid(udid)?;
        let mut keyring_error = None;
        if self.keyring {
            match self.keyring_get(&key) {
                Ok(Some(p)) => return Ok(Some((p, Backend::Keyring))),
                Ok(None) => {}
                Err(SecretError::Unavailable { why }) => {
                    tracing::debug!("no OS keyring to look the password of {udid} up in: {why}")
                }
                Err(e) => keyring_error = Some(e),
            }
        }
        let path = self.files.join(&key);
        match read_private(&self.files, &path, udid)? {
            Some(p) => Ok(Some((p, Backend::File(path)))),
            None => match keyring_error {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }

    /// Stores `password` for `udid` in the keyring, or in the owner-only file when
    /// `file_store` is set (then a keyring entry of the device is removed, so there is only
    /// one). Without `file_store` and without a keyring, fails with
    /// [`SecretError::Unavailable`]: never a silent fallback to a file.
    pub fn remember(
        &self,
        udid: &str,
        password: &str,
        file_store: bool,
    ) -> Result<Backend, SecretError> {
        let key = check_udid(udid)?;
        if file_store {
            let path = self.files.join(&key);
            write_private(&self.files, &path, password.as_bytes())?;
            if self.keyring {
                match self.keyring_delete(&key) {
                    Ok(_) | Err(SecretError::Unavailable { .. }) => {}
                    Err(e) => tracing::warn!("could not remove the keyring entry of {udid}: {e}"),
                }
            }
            return Ok(Backend::File(path));
        }
        if !self.keyring {
            return Err(SecretError::Unavailable {
                why: format!("{ENV_KEYRING}=off"),
            });
        }
        self.keyring_set(&key, udid, password)?;
        // A file from an earlier `--file-store` would otherwise outlive the keyring entry.
        let path = self.files.join(&key);
        remove_if_present(&path)?;
        Ok(Backend::Keyring)
    }

    /// Removes every remembered password of `udid` (keyring and file); returns where one was
    /// removed from (empty: there was none). No keyring is not an error here.
    pub fn forget(&self, udid: &str) -> Result<Vec<Backend>, SecretError> {
        let key = check_udid(udid)?;
        let mut removed = Vec::new();
        if self.keyring {
            match self.keyring_delete(&key) {
                Ok(0) => {}
                Ok(_) => removed.push(Backend::Keyring),
                Err(SecretError::Unavailable { why }) => {
                    tracing::debug!("no OS keyring to remove the password of {udid} from: {why}")
                }
                Err(e) => return Err(e),
            }
        }
        let path = self.files.join(&key);
        if remove_if_present(&path)? {
            removed.push(Backend::File(path));
        }
        Ok(removed)
    }

    /// Checks that the keyring can be reached (for messages before asking for a password).
    pub fn keyring_available(&self) -> Result<(), SecretError> {
        if !self.keyring {
            return Err(SecretError::Unavailable {
                why: format!("{ENV_KEYRING}=off"),
            });
        }
        let action = "connecting".to_string();
        self.on_keyring(action, || async move {
            connect().await?;
            Ok(())
        })
    }

    fn keyring_get(&self, key: &str) -> Result<Option<Password>, SecretError> {
        let action = format!("looking up the password of {key}");
        let key = key.to_string();
        let prompt = self.unlock_prompt;
        self.on_keyring(action.clone(), move || async move {
            let ss = connect().await?;
            let attrs = attributes(&key);
            let found = ss
                .search_items(attrs)
                .await
                .map_err(|e| keyring_error(&action, e))?;
            let item = match (found.unlocked.first(), found.locked.first()) {
                (Some(i), _) => i,
                (None, Some(i)) => {
                    if !prompt {
                        return Err(SecretError::Locked);
                    }
                    i.unlock().await.map_err(|e| keyring_error(&action, e))?;
                    i
                }
                (None, None) => return Ok(None),
            };
            let secret = Zeroizing::new(
                item.get_secret()
                    .await
                    .map_err(|e| keyring_error(&action, e))?,
            );
            match std::str::from_utf8(&secret) {
                Ok(s) => Ok(Some(Zeroizing::new(s.to_string()))),
                Err(_) => Err(SecretError::NotUtf8 {
                    udid: key.clone(),
                    source_name: Backend::Keyring.to_string(),
                }),
            }
        })
    }

    fn keyring_set(&self, key: &str, udid: &str, password: &str) -> Result<(), SecretError> {
        let action = format!("storing the password of {udid}");
        let key = key.to_string();
        let label = format!("iosnap backup password for {udid}");
        let secret = Zeroizing::new(password.as_bytes().to_vec());
        let prompt = self.unlock_prompt;
        self.on_keyring(action.clone(), move || async move {
            let ss = connect().await?;
            let err = |e| keyring_error(&action, e);
            let collection = match ss.get_default_collection().await {
                Ok(c) => c,
                Err(_) => ss.get_any_collection().await.map_err(err)?,
            };
            if collection.is_locked().await.map_err(err)? {
                if !prompt {
                    return Err(SecretError::Locked);
                }
                collection.unlock().await.map_err(err)?;
            }
            // One entry per device: drop copies in other collections first.
            let found = ss.search_items(attributes(&key)).await.map_err(err)?;
            for item in &found.unlocked {
                item.delete().await.map_err(err)?;
            }
            collection
                .create_item(&label, attributes(&key), &secret, true, "text/plain")
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn keyring_delete(&self, key: &str) -> Result<usize, SecretError> {
        let action = format!("removing the password of {key}");
        let key = key.to_string();
        let prompt = self.unlock_prompt;
        self.on_keyring(action.clone(), move || async move {
            let ss = connect().await?;
            let err = |e| keyring_error(&action, e);
            let found = ss.search_items(attributes(&key)).await.map_err(err)?;
            if !found.locked.is_empty() {
                if !prompt {
                    return Err(SecretError::Locked);
                }
                for item in &found.locked {
                    item.unlock().await.map_err(err)?;
                }
            }
            let mut n = 0;
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                item.delete().await.map_err(err)?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Runs one keyring conversation on a thread of its own with its own runtime, so callers
    /// may be synchronous or already inside a runtime, bounded by the store's timeout.
    fn on_keyring<T, F, Fut>(&self, action: String, f: F) -> Result<T, SecretError>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, SecretError>>,
    {
        let timeout = self.timeout;
        let secs = timeout.as_secs();
        let what = action.clone();
        let worker = std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| SecretError::Keyring {
                        action: what.clone(),
                        detail: format!("starting a runtime: {e}"),
                    })?;
                rt.block_on(async move {
                    match tokio::time::timeout(timeout, f()).await {
                        Ok(r) => r,
                        Err(_) => Err(SecretError::Timeout { action: what, secs }),
                    }
                })
            })
            .map_err(|e| SecretError::Keyring {
                action: action.clone(),
                detail: format!("starting a thread: {e}"),
            })?;
        worker.join().unwrap_or_else(|_| {
            Err(SecretError::Keyring {
                action,
                detail: "the keyring thread panicked".into(),
            })
        })
    }
}

fn attributes(key: &str) -> HashMap<&str, &str> {
    HashMap::from([("application", APPLICATION), ("kind", KIND), ("udid", key)])
}

/// Why the session bus is missing, in words, for the "no keyring" message.
fn no_bus_reason() -> String {
    match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        Some(a) => format!(
            "cannot connect to the D-Bus session bus at {}",
            a.to_string_lossy()
        ),
        None => "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no \
                 $XDG_RUNTIME_DIR/bus; a headless server or a session without a desktop login)"
            .to_string(),
    }
}

async fn connect() -> Result<SecretService<'static>, SecretError> {
    // Any failure to reach the session bus itself means "no keyring here".
    let conn = zbus::Connection::session()
        .await
        .map_err(|e| SecretError::Unavailable {
            why: match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
                Some(_) => format!("{} ({e})", no_bus_reason()),
                None => no_bus_reason(),
            },
        })?;
    match SecretService::connect_with_existing(EncryptionType::Dh, conn).await {
        Ok(ss) => Ok(ss),
        Err(secret_service::Error::Unavailable) => Err(SecretError::Unavailable {
            why: no_bus_reason(),
        }),
        Err(e) if is_service_unknown(&e) => Err(SecretError::Unavailable {
            why: "nothing on the D-Bus session bus provides the Secret Service \
                  (org.freedesktop.secrets): install and start gnome-keyring, KeePassXC or KWallet"
                .to_string(),
        }),
        Err(secret_service::Error::Zbus(zbus::Error::InputOutput(e))) => {
            Err(SecretError::Unavailable {
                why: format!("{}: {e}", no_bus_reason()),
            })
        }
        Err(e) => Err(keyring_error("connecting", e)),
    }
}

fn is_service_unknown(e: &secret_service::Error) -> bool {
    match e {
        secret_service::Error::ZbusFdo(zbus::fdo::Error::ServiceUnknown(_))
        | secret_service::Error::ZbusFdo(zbus::fdo::Error::NameHasNoOwner(_)) => true,
        secret_service::Error::Zbus(zbus::Error::MethodError(name, _, _)) => {
            let n = name.as_str();
            n == "org.freedesktop.DBus.Error.ServiceUnknown"
                || n == "org.freedesktop.DBus.Error.NameHasNoOwner"
        }
        _ => false,
    }
}

fn keyring_error(action: &str, e: secret_service::Error) -> SecretError {
    match e {
        secret_service::Error::Locked | secret_service::Error::Prompt => SecretError::Locked,
        e => SecretError::Keyring {
            action: action.to_string(),
            detail: e.to_string(),
        },
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks that `meta` belongs to us and is not readable or writable by anyone else.
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), SecretError> {
    let insecure = |why: String| SecretError::Insecure {
        path: path.to_path_buf(),
        why,
    };
    if meta.uid() != euid() {
        return Err(insecure(format!(
            "owned by uid {}, not by this user (uid {})",
            meta.uid(),
            euid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(insecure(format!(
            "mode {mode:03o} lets other users in; it must be 0600 (file) or 0700 (folder)"
        )));
    }
    Ok(())
}

/// The password file's folder: created 0700 when missing, else checked to be ours and private.
fn private_dir(dir: &Path, create: bool) -> Result<bool, SecretError> {
    let io = |source| SecretError::File {
        path: dir.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            check_private(dir, &m)?;
            Ok(true)
        }
        Ok(_) => Err(SecretError::Insecure {
            path: dir.to_path_buf(),
            why: "not a folder (a symlink or a file)".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Ok(false);
            }
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::DirBuilder::new().mode(0o700).create(dir).map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
    }
}

/// Reads an owner-only password file; `None` when it does not exist.
fn read_private(dir: &Path, path: &Path, udid: &str) -> Result<Option<Password>, SecretError> {
    if !private_dir(dir, false)? {
        return Ok(None);
    }
    let io = |source| SecretError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretError::Insecure {
            path: path.to_path_buf(),
            why: "not a regular file".into(),
        });
    }
    check_private(path, &meta)?;
    let mut raw = Zeroizing::new(Vec::new());
    f.read_to_end(&mut raw).map_err(io)?;
    match std::str::from_utf8(&raw) {
        Ok(s) => Ok(Some(Zeroizing::new(s.to_string()))),
        Err(_) => Err(SecretError::NotUtf8 {
            udid: udid.to_string(),
            source_name: Backend::File(path.to_path_buf()).to_string(),
        }),
    }
}

/// Writes an owner-only (0600) password file atomically: a new temp file in the same 0700
/// folder, fsync, rename over the old one, fsync the folder.
fn write_private(dir: &Path, path: &Path, secret: &[u8]) -> Result<(), SecretError> {
    private_dir(dir, true)?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| SecretError::File { path: p, source }
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.as_deref().unwrap_or("password"),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let written = f
        .write_all(secret)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<bool, SecretError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SecretError::File {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(t: &Path) -> PasswordStore {
        PasswordStore::new(&ConfigDir::at(t.join("config"))).keyring(false)
    }

    #[test]
    fn file_store_round_trip_is_owner_only_and_forgettable() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        assert!(s.lookup("UDID-1").unwrap().is_none());
        let b = s
            .remember("UDID-1", "pässword\nwith newline", true)
            .unwrap();
        let path = t.path().join("config/passwords/udid-1");
        assert_eq!(b, Backend::File(path.clone()));
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmeta = fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
        // Case-insensitive device identifiers.
        let (p, from) = s.lookup("udid-1").unwrap().unwrap();
        assert_eq!(p.as_str(), "pässword\nwith newline");
        assert_eq!(from, Backend::File(path.clone()));
        // Replacing keeps one file and no temp files.
        s.remember("UDID-1", "second", true).unwrap();
        assert_eq!(s.lookup("UDID-1").unwrap().unwrap().0.as_str(), "second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("udid-1")]);
        assert_eq!(s.forget("UDID-1").unwrap(), vec![Backend::File(path)]);
        assert!(s.lookup("UDID-1").unwrap().is_none());
        assert!(s.forget("UDID-1").unwrap().is_empty());
    }

    #[test]
    fn loose_permissions_are_refused_not_used() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        s.remember("UDID-2", "pw", true).unwrap();
        let path = s.file_path("UDID-2").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = s.lookup("UDID-2").unwrap_err();
        assert!(matches!(err, SecretError::Insecure { .. }), "{err}");
        assert!(err.to_string().contains("mode 644"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let dir = path.parent().unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            s.lookup("UDID-2").unwrap_err(),
            SecretError::Insecure { .. }
        ));
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink planted in place of the file is not followed.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), &path).unwrap();
        assert!(s.lookup("UDID-2").is_err());
    }

    #[test]
    fn bad_udids_never_become_paths() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        for bad in ["../x", "", "a/b", "x y", &"a".repeat(65)] {
            assert!(matches!(
                s.remember(bad, "pw", true),
                Err(SecretError::BadUdid(_))
            ));
            assert!(matches!(s.lookup(bad), Err(SecretError::BadUdid(_))));
        }
        assert!(!t.path().join("config/passwords").exists());
    }

    #[test]
    fn no_silent_fallback_to_a_file() {
        let t = tempfile::tempdir().unwrap();
        let s = store(t.path());
        let err = s.remember("UDID-3", "pw", false).unwrap_err();
        assert!(matches!(err, SecretError::Unavailable { .. }), "{err}");
        assert!(!t.path().join("config/passwords").exists());
    }
}
