//! The AWS emulator for end-to-end tests: one moto server per test binary, on a free
//! 127.0.0.1 port, started on first use from the virtual environment `make venv` builds
//! (`.venv`, or `$RUNBOOK_MOTO_PYTHON`). Runbooks run as a separate `runbook` process
//! pointed at it; the resulting state is read back through boto3, never through the
//! engine's own client.
//!
//! Without moto a test says so on the terminal and passes as skipped; with
//! `RUNBOOK_REQUIRE_MOTO=1` (set by `make test` and `.ci/run`) it fails instead.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::{Output, Scratch, binary, project_root};

pub struct Moto {
    pub url: String,
    python: PathBuf,
    log: PathBuf,
    // Held open: the server exits when the test process closes this pipe.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// See [`Moto::tls_front`].
pub struct TlsFront {
    pub url: String,
    pub authority: PathBuf,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn python() -> PathBuf {
    std::env::var_os("RUNBOOK_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".venv/bin/python"))
}

/// The shared server, or `None` (after saying why on the terminal) when moto is not installed.
pub fn moto(test: &str) -> Option<&'static Moto> {
    static SERVER: OnceLock<Result<Moto, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(moto) => Some(moto),
        Err(reason) => skip(test, reason),
    }
}

/// The virtual environment's Python (moto, boto3 and the pinned botocore) for tests that run
/// it without a server, or `None` (after saying why on the terminal) as [`moto`] does.
pub fn venv_python(test: &str) -> Option<PathBuf> {
    let python = python();
    if python.exists() {
        return Some(python);
    }
    skip(test, &format!("no Python with moto at {}", python.display()))
}

/// Passes `test` as skipped, or fails it under `RUNBOOK_REQUIRE_MOTO`.
fn skip<T>(test: &str, reason: &str) -> Option<T> {
    assert!(std::env::var_os("RUNBOOK_REQUIRE_MOTO").is_none(), "moto is required but {reason}");
    // Straight to the terminal: the test harness captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason} (run `make venv`, or `make test`)");
    None
}

fn start() -> Result<Moto, String> {
    let python = python();
    if !python.exists() {
        return Err(format!("no Python with moto at {}", python.display()));
    }
    let log = std::env::temp_dir().join(format!("runbook-moto-{}.log", std::process::id()));
    let mut child = Command::new(&python)
        .arg(project_root().join("tests/moto/server.py"))
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", python.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).map_err(|e| e.to_string())?;
    let port: u16 = line.trim().parse().map_err(|_| format!("moto did not start (printed {line:?})"))?;
    let stdin = child.stdin.take().unwrap();
    Ok(Moto {
        url: format!("http://127.0.0.1:{port}"),
        python,
        log,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

/// Runs the `runbook` binary with `args` against the AWS endpoint at `url` (fake credentials,
/// region us-east-1), its journal in `scratch`; `variables` change the environment further.
pub fn runbook_against(url: &str, scratch: &Scratch, variables: &[(&str, Option<&str>)], args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    aws_environment(&mut command, url);
    command.env("RUNBOOK_STATE_DIR", scratch.state()).env_remove("RUNBOOK_ACCOUNT_ID").args(args);
    for (name, value) in variables {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output().unwrap();
    Output {
        code: output.status.code().unwrap_or(255) as u8,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The environment every process talking to moto gets: fake credentials, a region, the
/// endpoint, and no user configuration or instance metadata to fall back on.
fn aws_environment(command: &mut Command, url: &str) {
    for name in
        ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    {
        command.env_remove(name);
    }
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

impl Moto {
    /// The `runbook` binary as a command pointed at moto, its journal in `scratch`, for tests
    /// that start it and stop it themselves.
    pub fn command(&self, scratch: &Scratch) -> Command {
        let mut command = Command::new(binary());
        aws_environment(&mut command, &self.url);
        command.env("RUNBOOK_STATE_DIR", scratch.state()).env_remove("RUNBOOK_ACCOUNT_ID");
        command
    }

    /// Runs the `runbook` binary with `args`, pointed at moto, its journal in `scratch`.
    pub fn runbook(&self, scratch: &Scratch, args: &[&str]) -> Output {
        self.runbook_with(scratch, &[], args)
    }

    /// [`Moto::runbook`] with variables changed: `Some` sets one, `None` removes it.
    pub fn runbook_with(&self, scratch: &Scratch, variables: &[(&str, Option<&str>)], args: &[&str]) -> Output {
        runbook_against(&self.url, scratch, variables, args)
    }

    /// A Route 53 hosted zone for `domain`, made with boto3; its bare id (no `/hostedzone/`).
    pub fn hosted_zone(&self, domain: &str) -> String {
        let id = self.boto3(&format!(
            "zone = boto3.client('route53').create_hosted_zone(Name='{domain}', CallerReference='{domain}')['HostedZone']\n\
             emit(zone['Id'].split('/')[-1])"
        ));
        id.as_str().unwrap().to_owned()
    }

    /// Runs a Python snippet with boto3 against moto; `emit(value)` prints its JSON result.
    pub fn boto3(&self, script: &str) -> Value {
        let program = format!(
            "import boto3, json, datetime\n\
             def emit(value):\n    print(json.dumps(value, default=str))\n\
             {script}"
        );
        let mut command = Command::new(&self.python);
        aws_environment(&mut command, &self.url);
        let output = command.arg("-c").arg(&program).output().unwrap();
        assert!(
            output.status.success(),
            "boto3 script failed:\n{program}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("boto3 script printed {stdout:?}: {e}"))
    }

    /// A TLS front for this server, started on first use (`tests/moto/tls_front.py`): its
    /// `https://localhost:PORT` address, and the file of the authority that signed its
    /// certificate, to trust through `SSL_CERT_FILE`.
    pub fn tls_front(&self) -> &TlsFront {
        static FRONT: OnceLock<TlsFront> = OnceLock::new();
        FRONT.get_or_init(|| {
            let authority = std::env::temp_dir().join(format!("runbook-tls-authority-{}.pem", std::process::id()));
            let port = self.url.rsplit(':').next().unwrap();
            let mut child = Command::new(&self.python)
                .arg(project_root().join("tests/moto/tls_front.py"))
                .arg(&authority)
                .arg(port)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("the TLS front printed {line:?}"));
            TlsFront {
                url: format!("https://localhost:{port}"),
                authority,
                _stdin: Mutex::new(child.stdin.take().unwrap()),
                _child: Mutex::new(child),
            }
        })
    }

    /// Every request moto received so far (all tests of this binary): method, path, query
    /// and operation name.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}
