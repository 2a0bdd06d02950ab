//! Named locks (`x-locks`, `--lock`): a second run is refused while the first holds the lock,
//! or waits for it with `--lock-timeout`; fencing tokens only grow and reach the steps; a run
//! whose lease is taken from it stops before its next step (exit 9). Real processes, a real
//! SQLite journal.

use runbook_tests::{Scratch, run_process, runbook, script_step, trail_payload, wait_until};

/// A step that records its name and the fencing token, and (with `wait`) waits for
/// `<trail>.go` before it ends.
fn step(name: &str, wait: bool) -> String {
    let wait = if wait { "True" } else { "False" };
    let script = format!(
        "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write(e['Name'] + ' ' + e['Token'] + '\\\\n')\\n  \
         while {wait} and not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)"
    );
    let payload = format!("{}, Token: '{{{{ automation:FENCING_TOKEN }}}}'", trail_payload(name));
    script_step(name, &[], &payload, &script)
}

fn locked(scratch: &Scratch) -> String {
    scratch.runbook(
        "locked.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-locks: ['dns/{{{{ Zone }}}}']\nparameters:\n  Trail: {{type: String}}\n  \
             Zone: {{type: String, default: zone-a}}\nmainSteps:\n{}{}",
            step("apply", true),
            step("verify", false)
        ),
    )
}

#[test]
fn a_second_run_is_refused_or_waits_while_the_first_holds_the_lock_and_tokens_grow() {
    let scratch = Scratch::new("locks");
    let path = locked(&scratch);
    let first = run_process(&scratch, &path, &[]).spawn().unwrap();
    wait_until("the first run holds the lock", || scratch.trail().len() == 1);
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let listed = runbook(&["locks", "list", "--state-dir", &state]);
    assert!(listed.stdout.contains("dns/zone-a") && listed.stdout.contains("token 1"), "{}", listed.stdout);

    let refused = runbook(&["run", &path, "-p", &trail, "--state-dir", &state]);
    assert_eq!(refused.code, 8, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("lock `dns/zone-a` is held by execution"), "{}", refused.stderr);

    // With a timeout the second waits: the first ends, and the second gets the next token.
    let waiting = run_process(&scratch, &path, &["--lock-timeout", "60s"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let second = waiting.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(scratch.trail(), ["apply 1", "verify 1", "apply 2", "verify 2"]);
}

#[test]
fn a_run_whose_lease_is_taken_from_it_stops_before_its_next_step() {
    let scratch = Scratch::new("lock-lost");
    let path = locked(&scratch);
    let holder = run_process(&scratch, &path, &[]).spawn().unwrap();
    wait_until("the run holds the lock", || scratch.trail().len() == 1);
    let state = scratch.state();
    let listed = runbook(&["locks", "list", "--state-dir", &state]);
    let execution = listed.stdout.split_whitespace().nth(1).unwrap().to_owned();
    let released = runbook(&["locks", "release", "dns/zone-a", "--force", &execution, "--state-dir", &state]);
    assert_eq!(released.code, 0, "{}", released.stderr);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let output = holder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(9), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["apply 1"], "verify never ran");
}

/// A holder stopped with SIGSTOP past its lease loses the lock to another run; after SIGCONT
/// its next step is refused (exit 9), and the other run's token is newer.
#[test]
fn a_holder_paused_past_its_lease_loses_the_lock_and_its_next_step_is_refused() {
    let scratch = Scratch::new("lock-sigstop");
    let path = scratch.runbook(
        "short.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-locks: [{{name: dns/zone-b, leaseSeconds: 1}}]\nparameters:\n  \
             Trail: {{type: String}}\nmainSteps:\n{}{}",
            step("apply", true),
            step("verify", false)
        ),
    );
    let holder = run_process(&scratch, &path, &[]).spawn().unwrap();
    wait_until("the run holds the lock", || scratch.trail().len() == 1);
    let kill = |signal: &str| {
        let status = std::process::Command::new("kill").args([signal, &holder.id().to_string()]).status().unwrap();
        assert!(status.success());
    };
    kill("-STOP");
    // Past the one-second lease, another run takes the lock (waiting for it if need be).
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let other = runbook(&["run", &path, "-p", &trail, "--state-dir", &state, "--lock-timeout", "30s"]);
    assert_eq!(other.code, 0, "{}{}", other.stdout, other.stderr);
    kill("-CONT");
    let output = holder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(9), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["apply 1", "apply 2", "verify 2"], "the paused holder never verified");
}
