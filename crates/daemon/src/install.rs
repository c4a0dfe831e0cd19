//! `iosnap daemon install`: the service definitions that start the daemon at login — a
//! systemd user unit on Linux, a launchd agent on macOS.

use std::path::{Path, PathBuf};

/// The systemd user unit running `exe daemon run` (restarted on failure; SIGTERM stops it
/// cleanly, which the daemon handles by rolling back a running backup).
pub fn systemd_unit(exe: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=iosnap automatic iPhone/iPad backups\n\
         After=default.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart=\"{}\" daemon run\n\
         Restart=on-failure\n\
         RestartSec=30\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=120\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exe.display()
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The launchd agent plist (for `~/Library/LaunchAgents/`), printed on request.
pub fn launchd_plist(exe: &Path) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>org.iosnap.daemon</string>
    <key>ProgramArguments</key>
    <array>
        <string>{}</string>
        <string>daemon</string>
        <string>run</string>
    </array>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <true/>
</dict>
</plist>
"#,
        xml_escape(&exe.display().to_string())
    )
}

/// `$XDG_CONFIG_HOME/systemd/user/iosnap.service`, else `~/.config/systemd/user/…`.
pub fn unit_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("systemd/user/iosnap.service"))
}

/// Writes `text` to `path` (creating folders), through a temp file and a rename.
pub fn write_unit(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("service.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unit_and_plist_name_the_binary() {
        let u = systemd_unit(Path::new("/usr/bin/iosnap"));
        assert!(u.contains("ExecStart=\"/usr/bin/iosnap\" daemon run\n"));
        assert!(u.contains("WantedBy=default.target"));
        let p = launchd_plist(Path::new("/opt/a&b/iosnap"));
        assert!(p.contains("<string>/opt/a&amp;b/iosnap</string>"));
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("systemd/user/iosnap.service");
        write_unit(&path, &u).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), u);
    }
}
