//! Helpers shared by the end-to-end tests: running the CLI in-process, and finding the
//! compatibility corpus beside the checkout.

pub mod moto;

use std::path::{Path, PathBuf};

/// What a `runbook` command line printed and returned.
pub struct Output {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `runbook ARGS...` in-process, without colour.
pub fn runbook(args: &[&str]) -> Output {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let argv = std::iter::once("runbook").chain(args.iter().copied());
    let code = runbook::cli::run(argv, &mut stdout, &mut stderr, false);
    Output { code, stdout: String::from_utf8(stdout).unwrap(), stderr: String::from_utf8(stderr).unwrap() }
}

/// The AWS-published corpus: `$RUNBOOK_CORPUS`, or `../shared/corpus/ssm-public` beside the
/// checkout. `None` (with a note on stderr) when absent; with `RUNBOOK_REQUIRE_CORPUS=1`
/// (set by `.ci/run`) an absent corpus fails the test instead of skipping it.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RUNBOOK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ssm-public"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("RUNBOOK_REQUIRE_CORPUS").is_none(),
        "the corpus is required but missing at {}",
        dir.display()
    );
    eprintln!("SKIPPED: corpus not found at {} (set RUNBOOK_CORPUS)", dir.display());
    None
}

/// The `runbook-under-test` binary cargo builds beside the test binaries (`target/debug/`), for
/// tests that run `runbook` as a separate process (to kill it, interrupt it, race two).
pub fn binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    test.parent().and_then(|deps| deps.parent()).unwrap().join("runbook-under-test")
}

/// `runbook run PATH --format json -p Trail=...` as a separate process with its journal in
/// `scratch`, more arguments in `extra`; stdout and stderr piped. Returned unstarted, so a test
/// can change its environment.
pub fn run_process(scratch: &Scratch, path: &str, extra: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    command
        .args(["run", path, "--state-dir", &scratch.state(), "--format", "json"])
        .arg("-p")
        .arg(format!("Trail={}", scratch.trail_path()))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Waits, bounded (30 s), until `check` holds, polling; never a fixed sleep.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

/// The id of the only execution in a scratch journal.
pub fn only_execution_id(scratch: &Scratch) -> String {
    let state = scratch.state();
    let list = runbook(&["executions", "list", "--state-dir", &state, "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0]["id"].as_str().unwrap().to_owned()
}

/// Waits until `step` is in the trail, kills `engine` with SIGKILL, and returns the id of
/// the only execution in the scratch journal.
pub fn kill_when_running(scratch: &Scratch, mut engine: std::process::Child, step: &str) -> String {
    wait_until(&format!("{step} runs"), || scratch.trail().contains(&step.to_owned()));
    engine.kill().unwrap();
    engine.wait().unwrap();
    only_execution_id(scratch)
}

/// The JSON lines of a `--format json` run's output.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// Whether a process is alive: it exists and is not a zombie waiting to be reaped.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `123 (python3) S ...`.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The project's root directory.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes `text` to a fresh file named `name` in a temporary directory and returns its path.
pub fn temp_file(name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runbook-tests-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh temporary directory for one test: a state directory for the journal and a trail
/// file that scripts append step names to.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("runbook-e2e-{name}-{}-{}", std::process::id(), unique()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn state(&self) -> String {
        self.dir.join("state").display().to_string()
    }

    pub fn trail_path(&self) -> String {
        self.dir.join("trail").display().to_string()
    }

    /// The step names scripts recorded, in order.
    pub fn trail(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("trail")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Writes a runbook into the scratch directory.
    pub fn runbook(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// A YAML list item for an `aws:executeScript` step (python3.11, handler `h`): more step keys
/// in `extra`, the contents of the `InputPayload` mapping, and the script as the body of a YAML
/// double-quoted string (with the escapes YAML reads there).
pub fn script_step(name: &str, extra: &[&str], payload: &str, script: &str) -> String {
    let mut text = format!("  - name: {name}\n    action: aws:executeScript\n");
    for line in extra {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str(&format!(
        "    inputs:\n      Runtime: python3.11\n      Handler: h\n      InputPayload: {{{payload}}}\n      Script: \"{script}\"\n"
    ));
    text
}

/// The `InputPayload` of a step that records `name` in the trail.
pub fn trail_payload(name: &str) -> String {
    format!("Trail: '{{{{ Trail }}}}', Name: {name}")
}

/// Runs `runbook run FILE ARGS` on a terminal (`script` gives it one), typing `typed`, with a
/// state dir of its own; returns what the terminal showed.
pub fn run_on_a_terminal(path: &Path, name: &str, args: &[&str], typed: &[u8]) -> String {
    use std::io::Write as _;
    let state = std::env::temp_dir().join(format!("runbook-{name}-{}", std::process::id()));
    let command =
        format!("{} run {} --state-dir {} {}", binary().display(), path.display(), state.display(), args.join(" "));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(typed).unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}
