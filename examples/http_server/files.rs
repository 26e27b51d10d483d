//! Static files under `--root`: a request path is mapped onto the root one
//! segment at a time, each segment percent-decoded on its own, and refused
//! if it would leave the root (`..`) or pass through a symbolic link (which
//! could point anywhere). A large file is sent in pieces as the client
//! reads it, so it never sits in memory whole.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bytes read from a file at a time. Above the loop's output high
/// watermark, so each piece sent makes the loop call `on_drained` once the
/// client has read it: the cue for the next piece.
pub const PIECE: usize = 256 * 1024;

/// The file a request path names under `root`, or `None` if it names
/// nothing there or tries to leave it.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.split(['?', '#']).next()?.strip_prefix('/')?;
    let mut path = root.to_path_buf();
    for raw in relative.split('/') {
        // Decoded after splitting: `%2F` is a character of a name, never
        // a separator, and `%2e%2e` is refused like `..`.
        let segment = percent_decode(raw)?;
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains(['/', '\\', '\0'])
        {
            return None;
        }
        path.push(segment);
        if fs::symlink_metadata(&path).ok()?.file_type().is_symlink() {
            return None;
        }
    }
    path.is_file().then_some(path)
}

/// `%XX` escapes decoded (RFC 3986); `None` if one is malformed or the
/// result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A file being sent: what is left of it.
pub struct Sending {
    file: File,
    left: u64,
}

impl Sending {
    /// Opens `path`; returns it with its length and modification time.
    pub fn open(path: &Path) -> io::Result<(Sending, u64, SystemTime)> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let left = metadata.len();
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        Ok((Sending { file, left }, left, modified))
    }

    /// Sends only the bytes `first..=last` (a range, checked against the
    /// length by the caller).
    pub fn only(&mut self, first: u64, last: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(first))?;
        self.left = last - first + 1;
        Ok(())
    }

    /// Appends the next piece (at most [`PIECE`] bytes) to `out`; returns
    /// whether the file is now sent whole.
    pub fn next_piece(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let want = self.left.min(PIECE as u64) as usize;
        let start = out.len();
        out.resize(start + want, 0);
        let read = self.file.read(&mut out[start..]);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        out.truncate(start + n);
        if n == 0 && self.left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        self.left -= n as u64;
        Ok(self.left == 0)
    }
}

/// The `Content-Type` for a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_the_root() {
        let root = std::env::temp_dir().join(format!("http-files-{}", std::process::id()));
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/page.html"), "hi").unwrap();
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("/etc", root.join("etc"));
        assert_eq!(
            resolve(&root, "/sub/page.html?x=1"),
            Some(root.join("sub/page.html"))
        );
        assert_eq!(
            resolve(&root, "/s%75b/page%2Ehtml"),
            Some(root.join("sub/page.html")),
            "escapes are decoded"
        );
        for bad in [
            "/%2E%2E/outside.txt",
            "/sub%2F..%2F..%2Fx",
            "/sub/page.html%00",
            "/sub/page%2",
            "/sub/page%zz",
            "/sub/page%+1.html",
            "/../outside.txt",
            "/sub/../../x",
            "/etc/hostname",
            "/sub/",
            "/sub//page.html",
            "/%2e%2e/x",
            "relative",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        let _ = fs::remove_dir_all(&root);
    }
}
