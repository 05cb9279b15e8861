//! The page's files, embedded at build time.

/// One embedded file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under `/admin/` (and under `assets/admin/` in the crate).
    pub path: &'static str,
    /// Contents.
    pub body: &'static str,
}

impl Asset {
    /// The `Content-Type` its extension calls for.
    pub fn content_type(&self) -> &'static str {
        match self.path.rsplit_once('.').map(|(_, ext)| ext) {
            Some("html") => "text/html; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        }
    }
}

macro_rules! embed {
    ($($path:literal)*) => {
        &[$(Asset {
            path: $path,
            body: include_str!(concat!("../../assets/admin/", $path)),
        },)*]
    };
}

static ASSETS: &[Asset] = embed! {
    "index.html"
    "app.css"
    "js/main.js"
    "js/api.js"
    "js/dom.js"
    "js/format.js"
    "js/i18n.js"
    "js/texts/en.js"
    "js/texts/vi.js"
    "js/live.js"
    "js/signin.js"
    "js/ui.js"
    "js/views/overview.js"
    "js/views/workers.js"
    "js/views/worker_schedule.js"
    "js/views/exams.js"
    "js/views/exam_parts.js"
    "js/views/exam_detail.js"
    "js/views/exam_network.js"
    "js/views/exam_ends.js"
    "js/views/exam_ledger.js"
    "js/views/exam_rehearsal.js"
    "js/views/audit.js"
    "js/views/deliveries.js"
};

/// Every file of the page.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The file at `path` (relative to `/admin/`).
pub(super) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn files(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                files(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_file_of_the_page_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/admin");
        let mut on_disk = Vec::new();
        files(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    /// The keys (`'nav.overview':`) of one language's table.
    fn keys(table: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = table
            .lines()
            .filter_map(|line| line.trim().strip_prefix('\''))
            .filter_map(|rest| rest.split_once("':").map(|(key, _)| key))
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn every_text_exists_in_vietnamese_and_english() {
        let english = keys(find("js/texts/en.js").unwrap().body);
        let vietnamese = keys(find("js/texts/vi.js").unwrap().body);
        assert!(english.len() > 100, "{english:?}");
        assert_eq!(english, vietnamese);
    }

    #[test]
    fn every_view_adds_its_texts_in_vietnamese_and_english() {
        let views = ASSETS.iter().filter(|a| a.body.contains("\naddTexts({"));
        let mut seen = 0;
        for view in views {
            let body = view.body;
            let en = body.find("\n  en: {").expect("the English table");
            let vi = body.find("\n  vi: {").expect("the Vietnamese table");
            let end = body[vi..].find("\n  },").expect("its end") + vi;
            let (english, vietnamese) = (keys(&body[en..vi]), keys(&body[vi..end]));
            assert!(!english.is_empty(), "{}: no texts", view.path);
            assert_eq!(english, vietnamese, "{}", view.path);
            seen += 1;
        }
        assert!(seen > 0, "no view adds texts of its own");
    }

    #[test]
    fn no_inline_script_or_style() {
        let html = find("index.html").unwrap().body;
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains(" style="), "inline style attribute");
        let handler = html.split(" on").skip(1).any(|rest| {
            let name = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_lowercase())
                    .len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
        for asset in ASSETS {
            assert!(
                !asset.body.contains("innerHTML"),
                "{} writes HTML from strings",
                asset.path
            );
        }
    }
}
