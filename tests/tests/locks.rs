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

/// `runbook locks release NAME --force HOLDER`, the holder read from `runbook locks list`.
fn release_by_force(scratch: &Scratch, name: &str) {
    let state = scratch.state();
    let listed = runbook(&["locks", "list", "--state-dir", &state]);
    let execution = listed.stdout.split_whitespace().nth(1).unwrap().to_owned();
    let released = runbook(&["locks", "release", name, "--force", &execution, "--state-dir", &state]);
    assert_eq!(released.code, 0, "{}", released.stderr);
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
    let listed = runbook(&["locks", "list", "--state-dir", &state, "--format", "json"]);
    let grants: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        (&grants[0]["name"], &grants[0]["token"], &grants[0]["mode"]),
        (&"dns/zone-a".into(), &1.into(), &"exclusive".into())
    );

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
    release_by_force(&scratch, "dns/zone-a");
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

/// Eight processes take one lock a hundred times each, straight from the store: read back
/// from their append-only log of holder intervals, no two grants overlap in time, tokens grow
/// with time, and every token from 1 to 800 was granted once (none lost, none reused).
#[test]
fn eight_processes_taking_one_lock_a_hundred_times_never_overlap() {
    let scratch = Scratch::new("lock-hammer");
    let state = scratch.state();
    let log = scratch.trail_path();
    let hammers: Vec<_> = (0..8)
        .map(|i| {
            std::process::Command::new(runbook_tests::binary())
                .args(["lock-hammer", &state, "fleet/one", "100", &log, &format!("h{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut hammer in hammers {
        assert!(hammer.wait().unwrap().success());
    }
    check_intervals(&std::fs::read_to_string(&log).unwrap(), 800);
}

/// Checks a lock-hammer log: `count` grants, tokens 1..=count, intervals in token order that
/// never overlap.
pub fn check_intervals(log: &str, count: u64) {
    let mut grants: Vec<(u64, String, u128, u128)> = log
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields[0].parse().unwrap(), fields[1].to_owned(), fields[2].parse().unwrap(), fields[3].parse().unwrap())
        })
        .collect();
    grants.sort_by_key(|grant| grant.0);
    let tokens: Vec<u64> = grants.iter().map(|grant| grant.0).collect();
    assert_eq!(tokens, (1..=count).collect::<Vec<_>>(), "every token granted once, none lost");
    for pair in grants.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert!(
            before.3 <= after.2,
            "token {} ({}) held until {} but token {} ({}) was granted at {}",
            before.0,
            before.1,
            before.3,
            after.0,
            after.1,
            after.2
        );
    }
}

/// A step that runs longer than the lease keeps the lock: it is renewed while the step runs,
/// so a second run is refused well past the lease (and leaves no execution behind); each
/// renewal is in the timeline.
#[test]
fn a_step_longer_than_its_lease_keeps_the_lock_and_a_refused_run_leaves_nothing() {
    let scratch = Scratch::new("lock-long-step");
    let path = scratch.runbook(
        "long.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-locks: [{{name: dns/zone-c, leaseSeconds: 1}}]\nparameters:\n  \
             Trail: {{type: String}}\nmainSteps:\n{}{}",
            step("apply", true),
            step("verify", false)
        ),
    );
    let holder = run_process(&scratch, &path, &[]).spawn().unwrap();
    wait_until("the run holds the lock", || scratch.trail().len() == 1);
    // Well past the one-second lease, while the step still runs.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    let refused = runbook(&["run", &path, "-p", &trail, "--state-dir", &state]);
    assert_eq!(refused.code, 8, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("lock `dns/zone-c` is held by execution"), "{}", refused.stderr);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let output = holder.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert_eq!(listed.stdout.lines().count(), 1, "the refused run recorded nothing: {}", listed.stdout);
    let id = listed.stdout.split_whitespace().next().unwrap();
    let shown = runbook(&["executions", "show", id, "--state-dir", &state]);
    assert!(shown.stdout.contains("lock `dns/zone-c` renewed"), "{}", shown.stdout);
    assert!(shown.stdout.contains("lock `dns/zone-c` released"), "{}", shown.stdout);
}

/// `runbook plan --out` saves a plan; `run --plan` runs it, and refuses it once another run
/// applied under its lock since, once the plan file, a parameter or the runbook changed:
/// each refusal says why and records no execution.
#[test]
fn a_saved_plan_runs_and_a_stale_or_changed_one_is_refused() {
    let scratch = Scratch::new("lock-plans");
    let path = locked(&scratch);
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let plan = |name: &str| {
        let out = scratch.path(name);
        let planned = runbook(&["plan", &path, "-p", &trail, "--out", &out, "--state-dir", &state]);
        assert_eq!(planned.code, 0, "{}", planned.stderr);
        assert!(planned.stdout.contains("runbook run --plan"), "{}", planned.stdout);
        out
    };
    let (first, second) = (plan("first.json"), plan("second.json"));
    let ran = runbook(&["run", "--plan", &first, "--state-dir", &state]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let stale = runbook(&["run", "--plan", &second, "--state-dir", &state]);
    assert_eq!(stale.code, 8, "{}", stale.stderr);
    assert!(stale.stderr.contains("saved plan is stale: under lock `dns/zone-a`"), "{}", stale.stderr);
    assert!(stale.stderr.contains("plan again"), "{}", stale.stderr);

    let third = plan("third.json");
    let changed = runbook(&["run", "--plan", &third, "-p", "Zone=zone-z", "--state-dir", &state]);
    assert_eq!(changed.code, 8, "{}", changed.stderr);
    assert!(changed.stderr.contains("parameter `Zone` is \"zone-z\" now"), "{}", changed.stderr);
    let text = std::fs::read_to_string(&third).unwrap();
    std::fs::write(&third, text.replace("zone-a", "zone-b")).unwrap();
    let edited = runbook(&["run", "--plan", &third, "--state-dir", &state]);
    assert_eq!(edited.code, 8, "{}", edited.stderr);
    assert!(edited.stderr.contains("was changed after it was saved"), "{}", edited.stderr);
    let fourth = plan("fourth.json");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "# changed\n").unwrap();
    let moved = runbook(&["run", "--plan", &fourth, "--state-dir", &state]);
    assert_eq!(moved.code, 8, "{}", moved.stderr);
    assert!(moved.stderr.contains("changed since the plan was saved"), "{}", moved.stderr);
    let not_a_plan = runbook(&["run", "--plan", &path, "--state-dir", &state]);
    assert_eq!(not_a_plan.code, 8, "{}", not_a_plan.stderr);
    assert!(not_a_plan.stderr.contains("is not a saved plan"), "{}", not_a_plan.stderr);

    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    assert_eq!(listed.stdout.lines().count(), 1, "only the fresh plan ran: {}", listed.stdout);
}

/// `runbook undo` changes what the locks guard, as the run did: it takes the runbook's locks,
/// and is refused while another execution holds one.
#[test]
fn undo_takes_the_runbooks_locks() {
    let scratch = Scratch::new("lock-undo");
    let path = scratch.runbook(
        "undoable.yaml",
        "schemaVersion: '0.3'\nx-locks: [dns/zone-a]\nmainSteps:\n  - name: change\n    action: aws:sleep\n    \
         inputs: {Duration: PT0S}\n    x-undo: {action: aws:sleep, inputs: {Duration: PT0S}}\n",
    );
    let state = scratch.state();
    let ran = runbook(&["run", &path, "--state-dir", &state]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let listed = runbook(&["executions", "list", "--state-dir", &state]);
    let id = listed.stdout.split_whitespace().next().unwrap().to_owned();
    // Another execution holds the lock while its step waits.
    let holder = run_process(&scratch, &locked(&scratch), &[]).spawn().unwrap();
    wait_until("the other run holds the lock", || scratch.trail().len() == 1);
    let refused = runbook(&["undo", &id, "--state-dir", &state]);
    assert_eq!(refused.code, 8, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("lock `dns/zone-a` is held by execution"), "{}", refused.stderr);
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
    let undone = runbook(&["undo", &id, "--state-dir", &state]);
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    let shown = runbook(&["executions", "show", &id, "--state-dir", &state]);
    assert!(shown.stdout.contains("lock `dns/zone-a` granted"), "{}", shown.stdout);
    assert!(shown.stdout.contains("undo:change"), "{}", shown.stdout);
}

/// A lease lost while an attempt runs refuses the retry: the second attempt never starts
/// (before, only a new step was checked).
#[test]
fn a_lease_lost_during_an_attempt_refuses_its_retry() {
    let scratch = Scratch::new("lock-retry");
    let script = "import os, time\\ndef h(e, c):\\n  open(e['Trail'], 'a').write('attempt\\\\n')\\n  \
                  while not os.path.exists(e['Trail'] + '.go'): time.sleep(0.05)\\n  raise Exception('failed')";
    let path = scratch.runbook(
        "retry.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-locks: [dns/zone-r]\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}",
            script_step("apply", &["maxAttempts: 3"], &trail_payload("apply"), script)
        ),
    );
    let holder = run_process(&scratch, &path, &[]).spawn().unwrap();
    wait_until("the first attempt runs", || scratch.trail().len() == 1);
    release_by_force(&scratch, "dns/zone-r");
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let output = holder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(9), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["attempt"], "no retry ran without the lock");
}

/// A child runbook (aws:executeAutomation of a local runbook) runs under its parent's locks:
/// one it also names is not taken again (it would wait for its own parent), and it reads the
/// parent's fencing token.
#[test]
fn a_child_runbook_runs_under_its_parents_locks() {
    let scratch = Scratch::new("lock-child");
    scratch.runbook(
        "child.yaml",
        &format!(
            "schemaVersion: '0.3'\nx-locks: ['dns/zone-a']\nparameters:\n  Trail: {{type: String}}\nmainSteps:\n{}",
            step("work", false)
        ),
    );
    let path = scratch.runbook(
        "parent.yaml",
        "schemaVersion: '0.3'\nx-locks: ['dns/zone-a']\nparameters:\n  Trail: {type: String}\nmainSteps:\n  \
         - name: call\n    action: aws:executeAutomation\n    inputs:\n      DocumentName: child\n      \
         RuntimeParameters: {Trail: '{{ Trail }}'}\n",
    );
    let output = run_process(&scratch, &path, &[]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(scratch.trail(), ["work 1"], "the child ran with its parent's token");
}

/// A saved plan whose applied token was edited and whose digest was made again is unknown to
/// the store (only what `plan --out` saved runs), as is a plan saved against another store.
#[test]
fn a_forged_plan_or_one_from_another_store_is_refused() {
    let scratch = Scratch::new("lock-forged");
    let path = locked(&scratch);
    let state = scratch.state();
    let trail = format!("Trail={}", scratch.trail_path());
    std::fs::write(format!("{}.go", scratch.trail_path()), "").unwrap();
    let saved = scratch.path("plan.json");
    let planned = runbook(&["plan", &path, "-p", &trail, "--out", &saved, "--state-dir", &state]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let ran = runbook(&["run", &path, "-p", &trail, "--state-dir", &state]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The stale plan, forged fresh: applied raised, the digest made again as the engine does.
    let mut plan: runbook::plan::saved::SavedPlan =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    plan.locks[0].applied = 99;
    plan.digest = String::new();
    plan.digest = runbook::exec::content_hash(serde_json::to_string(&plan).unwrap().as_bytes());
    std::fs::write(&saved, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let forged = runbook(&["run", "--plan", &saved, "--state-dir", &state]);
    assert_eq!(forged.code, 8, "{}", forged.stderr);
    assert!(forged.stderr.contains("was not saved against this store"), "{}", forged.stderr);
    // A plan saved against one store is no plan of another.
    let fresh = scratch.path("fresh.json");
    let planned = runbook(&["plan", &path, "-p", &trail, "--out", &fresh, "--state-dir", &state]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let other = scratch.path("other-state");
    let elsewhere = runbook(&["run", "--plan", &fresh, "--state-dir", &other]);
    assert_eq!(elsewhere.code, 8, "{}", elsewhere.stderr);
    assert!(elsewhere.stderr.contains("was not saved against this store (saved against"), "{}", elsewhere.stderr);
    let ran = runbook(&["run", "--plan", &fresh, "--state-dir", &state]);
    assert_eq!(ran.code, 0, "the fresh plan runs where it was saved: {}", ran.stderr);
}
