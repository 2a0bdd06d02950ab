//! The README's five-minute tour, run as written: every command of its code block, in order,
//! from a fresh copy of the repository (the files git tracks), with `runbook` on the PATH and
//! a state directory of its own. Where the tour shows output (`#   ` lines right under a command),
//! the command must print those lines, in order, ids and times aside; where it says
//! `# exit N`, the command must exit with N, and every other command with 0. Changing the
//! tour or the output without the other fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

use runbook_tests::{Scratch, project_root};

/// One command of the tour and what the tour says it prints.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    exit: i32,
    shown: Vec<String>,
}

fn tour_steps() -> Vec<Step> {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let start = readme.find("## Five-minute tour").expect("README has a five-minute tour");
    let block_start = start + readme[start..].find("```sh\n").expect("the tour is a ```sh block") + 6;
    let block_end = block_start + readme[block_start..].find("\n```").unwrap();
    let first_line = readme[..block_start].lines().count() + 1;
    let mut steps: Vec<Step> = Vec::new();
    // `#   ` lines right under a command are its output; other comments are prose.
    let mut under_command = false;
    for (index, line) in readme[block_start..block_end].lines().enumerate() {
        if let (true, Some(shown)) = (under_command, line.strip_prefix("#   ")) {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("README line {}: output before a command", first_line + index));
            step.shown.push(shown.to_owned());
        } else if line.starts_with('#') || line.trim().is_empty() {
            under_command = false;
        } else {
            under_command = true;
            let exit = line
                .rsplit_once("# exit ")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            steps.push(Step { line: first_line + index, command: line.to_owned(), exit, shown: Vec::new() });
        }
    }
    steps
}

/// The files git tracks, copied: what a fresh clone holds.
fn fresh_copy(into: &Path) {
    let root = project_root();
    let listed = Command::new("git").args(["ls-files", "-z"]).current_dir(&root).output().unwrap();
    assert!(listed.status.success(), "git ls-files: {}", String::from_utf8_lossy(&listed.stderr));
    for name in listed.stdout.split(|byte| *byte == 0).filter(|name| !name.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let (from, to) = (root.join(name), into.join(name));
        if from.is_file() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// A line with ids and times made neutral and blanks collapsed.
fn normal(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        let rest = &chars[at..chars.len().min(at + 9)];
        let boundary = at == 0 || !chars[at - 1].is_ascii_alphanumeric();
        // An execution id, whole (`2fc67835-4a1b-...`) or shortened (`2fc67835-...`).
        if boundary && rest.len() == 9 && rest[..8].iter().all(char::is_ascii_hexdigit) && rest[8] == '-' {
            while at < chars.len() && (chars[at].is_ascii_hexdigit() || chars[at] == '-' || chars[at] == '.') {
                at += 1;
            }
            out.push_str("<id>");
            continue;
        }
        // A time: `0.09s`, `1.628s`, `12s`.
        if boundary && chars[at].is_ascii_digit() {
            let mut end = at;
            while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                end += 1;
            }
            if end < chars.len()
                && chars[end] == 's'
                && chars[end - 1] != '.'
                && (end + 1 == chars.len() || !chars[end + 1].is_alphanumeric())
            {
                out.push_str("<t>");
                at = end + 1;
                continue;
            }
        }
        out.push(chars[at]);
        at += 1;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `actual` is the line the tour shows: equal once normalised, where `...` inside a
/// shown line stands for any text.
fn matches(shown: &str, actual: &str) -> bool {
    let (shown, actual) = (normal(shown), normal(actual));
    let pieces: Vec<&str> = shown.split("...").map(str::trim).collect();
    if pieces.len() == 1 {
        return shown == actual;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut from = first.len();
    for piece in &pieces[1..pieces.len() - 1] {
        let Some(found) = actual[from..].find(piece) else { return false };
        from += found + piece.len();
    }
    from <= actual.len() - last.len()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let scratch = Scratch::new("tour");
    let copy = scratch.dir.join("repository");
    fresh_copy(&copy);
    let bin = scratch.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(runbook_tests::binary(), bin.join("runbook")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let steps = tour_steps();
    assert!(steps.len() >= 20, "{} commands in the tour", steps.len());
    for step in &steps {
        let output = Command::new("bash")
            .args(["-o", "pipefail", "-c", &step.command])
            .current_dir(&copy)
            .env("PATH", &path)
            .env("RUNBOOK_STATE_DIR", scratch.state())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let printed = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(
            output.status.code(),
            Some(step.exit),
            "README line {}: `{}` exited {:?}, the tour says {}:\n{printed}",
            step.line,
            step.command,
            output.status.code(),
            step.exit
        );
        let lines: Vec<&str> = printed.lines().collect();
        let mut next = 0;
        for shown in step.shown.iter().filter(|shown| shown.trim() != "...") {
            match lines[next..].iter().position(|actual| matches(shown, actual)) {
                Some(found) => next += found + 1,
                None => panic!(
                    "README line {}: `{}` does not print, in order, the tour's line\n    {shown}\nIt printed:\n{printed}",
                    step.line, step.command
                ),
            }
        }
    }
    // The tour leaves the copy as it found it: nothing written into the repository.
    let left: Vec<PathBuf> = walk_new_files(&copy);
    assert!(left.is_empty(), "the tour left files in the repository: {left:?}");
}

/// Files in the copy that git did not track (what the tour wrote).
fn walk_new_files(copy: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git").args(["ls-files"]).current_dir(project_root()).output().unwrap();
    let tracked: std::collections::HashSet<String> =
        String::from_utf8_lossy(&listed.stdout).lines().map(str::to_owned).collect();
    let mut left = Vec::new();
    let mut pending = vec![copy.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(copy).unwrap().to_string_lossy().into_owned();
                if !tracked.contains(&relative) {
                    left.push(path);
                }
            }
        }
    }
    left
}

#[test]
fn tour_lines_match_with_ids_and_times_aside() {
    assert!(matches("[   0.09s] ✓ checkDisks: Success in 0.09s", "[   1.20s] ✓ checkDisks: Success in 0.11s"));
    assert!(matches(
        "Running x (execution 2fc67835-...)",
        "Running x (execution 2fc67835-4a1b-4c2d-8e9f-0123456789ab)"
    ));
    assert!(matches("outputs {\"Busiest\":\"web-3\",...}", "outputs {\"Busiest\":\"web-3\",\"BusiestPercent\":54}"));
    assert!(!matches("1 runbook: 1 valid", "2 runbooks: 2 valid, 0 invalid, 0 warnings"));
    assert!(!matches("Success in 0.09s", "Failed in 0.09s"));
}
