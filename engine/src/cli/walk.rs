//! Finding files under the paths a command was given, the way ripgrep walks a tree (the
//! `ignore` crate): `.gitignore` and `.ignore` files are honoured (in a repository or not),
//! hidden entries are skipped, `--exclude GLOB` prunes more. A file named on the command line
//! is always taken. What was passed over is counted, so the summary can say why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use globset::{Glob, GlobSet, GlobSetBuilder};

/// Files found, and what was passed over.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: Vec<PathBuf>,
    /// Per file, whether it was found in a folder rather than named (a named file is always
    /// taken; one found may turn out not to be of the wanted kind).
    pub in_folder: Vec<bool>,
    /// Files with a wanted extension whose content is not of the wanted kind (counted by the
    /// caller, which reads them).
    pub unrecognised: usize,
    /// Entries (files or whole folders) matched by `--exclude`.
    pub excluded: usize,
}

impl Walked {
    /// Why files were passed over, for the summary (`None` when none were).
    pub fn skipped(&self, unrecognised_as: &str) -> Option<String> {
        let mut reasons = Vec::new();
        if self.unrecognised > 0 {
            reasons.push(format!("{} {unrecognised_as}", self.unrecognised));
        }
        if self.excluded > 0 {
            reasons.push(format!("{} excluded by --exclude", self.excluded));
        }
        (!reasons.is_empty())
            .then(|| format!("skipped {}; hidden entries and what .gitignore lists are not walked", reasons.join(", ")))
    }
}

/// What a walk looks for: files by name (their content is for the caller to judge).
pub struct Wanted<'a> {
    pub name: &'a dyn Fn(&Path) -> bool,
}

/// Walks `paths` for the files `wanted` accepts, sorted per path.
pub fn walk(paths: &[PathBuf], excludes: &[String], wanted: &Wanted<'_>) -> anyhow::Result<Walked> {
    let excluded = exclusions(excludes)?;
    let mut walked = Walked::default();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
        if !metadata.is_dir() {
            walked.files.push(path.clone());
            walked.in_folder.push(false);
            continue;
        }
        let pruned = Arc::new(AtomicUsize::new(0));
        let mut builder = ignore::WalkBuilder::new(path);
        builder.hidden(true).git_ignore(true).git_exclude(true).git_global(false).require_git(false);
        if let Some(excluded) = excluded.clone() {
            let root = path.clone();
            let pruned = Arc::clone(&pruned);
            builder.filter_entry(move |entry| {
                let relative = entry.path().strip_prefix(&root).unwrap_or(entry.path());
                // Relative to the walked folder, as given on the command line, or by name.
                let out = entry.depth() > 0
                    && (excluded.is_match(relative)
                        || excluded.is_match(entry.path())
                        || excluded.is_match(entry.file_name()));
                if out {
                    pruned.fetch_add(1, Ordering::Relaxed);
                }
                !out
            });
        }
        let mut found = Vec::new();
        for entry in builder.build() {
            let entry = entry.with_context(|| format!("failed to walk {}", path.display()))?;
            if !entry.file_type().is_some_and(|kind| kind.is_file()) || !(wanted.name)(entry.path()) {
                continue;
            }
            found.push(entry.into_path());
        }
        // Sorted once the walk is done, in the order of a walk that sorts each folder's
        // entries by name: every path starts with the folder walked, and with separators read
        // as the lowest byte, paths compare byte by byte as they do name by name. (The
        // walker's own sort, and comparing `Path`s, took names apart for every comparison: a
        // millisecond for the corpus's 497 files, before any could be validated.)
        found.sort_by_cached_key(|path| {
            let bytes = path.as_os_str().as_encoded_bytes();
            bytes
                .iter()
                .map(|&byte| if std::path::is_separator(char::from(byte)) { 0 } else { byte })
                .collect::<Vec<u8>>()
        });
        walked.in_folder.extend(found.iter().map(|_| true));
        walked.files.append(&mut found);
        walked.excluded += pruned.load(Ordering::Relaxed);
    }
    Ok(walked)
}

fn exclusions(excludes: &[String]) -> anyhow::Result<Option<GlobSet>> {
    if excludes.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in excludes {
        let glob = Glob::new(pattern).map_err(|error| super::UsageError(format!("--exclude {pattern}: {error}")))?;
        set.add(glob);
    }
    Ok(Some(set.build()?))
}

/// Whether a loaded file is a runbook: its top level has `schemaVersion` and `mainSteps`, or,
/// when it did not parse, its text looks like one (so its errors are reported).
pub fn is_runbook(loaded: &crate::document::Loaded) -> bool {
    match &loaded.value {
        Some(serde_json::Value::Object(top)) => top.contains_key("schemaVersion") && top.contains_key("mainSteps"),
        Some(_) => false,
        None => looks_like_runbook(loaded.source.text.as_bytes()),
    }
}

/// Whether a text holds both `schemaVersion` and `mainSteps` anywhere: what every runbook
/// does, found without parsing.
pub fn names_runbook_keys(bytes: &[u8]) -> bool {
    let names = |key: &[u8]| memchr::memmem::find(bytes, key).is_some();
    names(b"schemaVersion") && names(b"mainSteps")
}

/// Whether a YAML or JSON text is a runbook: `schemaVersion` and `mainSteps` are keys of its
/// top level (a JSON Schema for runbooks names them deeper down). A JSON text that does not
/// parse but names both is taken, so its errors are reported.
pub fn looks_like_runbook(bytes: &[u8]) -> bool {
    if !names_runbook_keys(bytes) {
        return false;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        return match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(top)) => top.contains_key("schemaVersion") && top.contains_key("mainSteps"),
            Ok(_) => false,
            Err(_) => true,
        };
    }
    // YAML in block style: top-level keys start their line.
    let top_level = |key: &str| {
        text.lines().any(|line| {
            let line = line.trim_start_matches('\u{feff}');
            [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|form| line.strip_prefix(form.as_str()).is_some_and(|rest| rest.trim_start().starts_with(':')))
        })
    };
    top_level("schemaVersion") && top_level("mainSteps")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files come in the order of a walk that sorts each folder's entries by name, with
    /// names that sort differently as bytes than as path parts (`a-b/` against `a/`), a folder
    /// beside a file of the same stem, upper case, and depth.
    #[test]
    fn files_come_in_the_order_of_a_walk_sorted_by_name() {
        let root = std::env::temp_dir().join(format!("runbook-walk-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in
            ["a.json", "a/z.json", "a/b/c.yaml", "a-b/x.json", "a0.json", "B.json", "b/c.json", "é.yml", "a/b.json"]
        {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        let any = |_: &Path| true;
        let walked = walk(std::slice::from_ref(&root), &[], &Wanted { name: &any }).unwrap();
        let mut builder = ignore::WalkBuilder::new(&root);
        builder.sort_by_file_name(|a, b| a.cmp(b));
        let sorted_by_the_walker: Vec<PathBuf> = builder
            .build()
            .map(Result::unwrap)
            .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
            .map(ignore::DirEntry::into_path)
            .collect();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(walked.files, sorted_by_the_walker);
        assert_eq!(walked.files.len(), 9);
        assert_eq!(walked.in_folder, vec![true; 9]);
    }

    #[test]
    fn runbooks_are_recognised_by_their_top_level_keys() {
        for runbook in [
            "schemaVersion: '0.3'\nmainSteps: []\n",
            "\u{feff}# notes\n---\nschemaVersion : '0.3'\r\nmainSteps:\r\n  - x\r\n",
            "\u{feff}{\n  \"schemaVersion\": \"0.3\",\n  \"mainSteps\": []\n}",
            "{\"schemaVersion\": \"0.3\", \"mainSteps\": [",
        ] {
            assert!(looks_like_runbook(runbook.as_bytes()), "{runbook:?}");
        }
        for other in [
            "{\"properties\": {\"schemaVersion\": {}, \"mainSteps\": {}}}",
            "scenarios:\n  - note: schemaVersion and mainSteps\n",
            "tasks: []\n",
        ] {
            assert!(!looks_like_runbook(other.as_bytes()), "{other:?}");
        }
    }
}
