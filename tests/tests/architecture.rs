//! The boundaries ARCHITECTURE.md states, checked on the sources: what each module may
//! import, that only the catalogue and an action's own file match on action names, and that
//! the pure stages stay pure.

use std::path::{Path, PathBuf};

use runbook_tests::project_root;

/// Every `.rs` file under `engine/src/` whose path (relative to it) starts with one of
/// `prefixes`, with its text, unit tests cut off.
fn sources(prefixes: &[&str]) -> Vec<(String, String)> {
    let root = project_root().join("engine/src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).unwrap().display().to_string();
            prefixes.iter().any(|prefix| relative.starts_with(prefix)).then(|| {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
                (relative, code)
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code (comments aside) that use a path starting with one of `modules`.
fn uses(code: &str, modules: &[&str]) -> Vec<String> {
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| modules.iter().any(|module| line.contains(module)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn actions_and_aws_import_neither_exec_nor_validate_and_diagnostic_no_template() {
    for (file, code) in sources(&["actions", "aws"]) {
        let found = uses(&code, &["crate::exec", "crate::validate", "crate::cli"]);
        assert!(found.is_empty(), "{file} imports what it must not: {found:?}");
    }
    for (file, code) in sources(&["aws"]) {
        let found = uses(&code, &["crate::actions", "crate::timeline", "crate::journal"]);
        assert!(found.is_empty(), "{file} imports what it must not: {found:?}");
    }
    let (_, diagnostic) = sources(&["diagnostic.rs"]).pop().unwrap();
    assert!(uses(&diagnostic, &["crate::template"]).is_empty(), "diagnostic imports template");
}

#[test]
fn the_pure_stages_do_no_io_and_nothing_async() {
    for (file, code) in sources(&["plan", "template", "validate", "document/selector.rs", "document/outputs.rs"]) {
        let found = uses(&code, &["std::fs", "std::net", "std::process", "tokio", "async fn", ".await"]);
        assert!(found.is_empty(), "{file} does I/O or async: {found:?}");
    }
}

#[test]
fn only_the_catalogue_and_an_actions_own_file_match_on_action_names() {
    for (file, code) in sources(&[""]) {
        if file == "actions.rs" || file.starts_with("actions/") {
            continue;
        }
        for line in code.lines().filter(|line| !line.trim_start().starts_with("//")) {
            let Some(at) = line.find("\"aws:") else { continue };
            let before = line[..at].trim_end();
            let after = line[at + 1..].split_once('"').map_or("", |(_, rest)| rest).trim_start();
            let compares =
                before.ends_with("==") || before.ends_with("!=") || after.starts_with("=>") || after.starts_with('|');
            assert!(!compares, "{file} matches on an action name: {}", line.trim());
        }
    }
}

#[test]
fn only_the_cli_knows_clap_terminals_and_exit_codes() {
    for (file, code) in sources(&[""]) {
        if file == "cli.rs" || file.starts_with("cli/") || file == "main.rs" {
            continue;
        }
        let found = uses(&code, &["clap::", "IsTerminal", "std::process::exit", "ExitCode"]);
        assert!(found.is_empty(), "{file} knows what only the CLI may: {found:?}");
    }
}
