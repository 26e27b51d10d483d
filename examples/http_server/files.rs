//! Static files under `--root`: a request path is mapped onto the root one
//! segment at a time, and refused if it would leave it (`..`) or pass
//! through a symbolic link (which could point anywhere).

use std::fs;
use std::path::{Path, PathBuf};

/// The file a request path names under `root`, or `None` if it names
/// nothing there or tries to leave it.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.split(['?', '#']).next()?.strip_prefix('/')?;
    let mut path = root.to_path_buf();
    for segment in relative.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains(['\\', '\0', '%'])
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
        let _ = std::os::unix::fs::symlink("/etc", root.join("etc"));
        assert_eq!(
            resolve(&root, "/sub/page.html?x=1"),
            Some(root.join("sub/page.html"))
        );
        for bad in [
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
