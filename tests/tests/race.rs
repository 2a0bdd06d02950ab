//! The outage behind issue 16, reproduced and refused. Three DNS enactors apply numbered
//! plans 1, 2 and 3 to one record in moto's Route 53; the one with plan 1 is slow (it holds an
//! old plan while the others apply); a clean-up then deletes the records of every plan older
//! than the newest, as the incident's clean-up deleted the stale plan it found active.
//!
//! - Plain AWS runbooks (no locks, no checks): the slow enactor's old plan lands last, and the
//!   record ends old or, once cleaned up, empty. It happens at least once in the trials.
//! - The shipped `dns-apply-plan.yaml` under the zone's lock, each plan saved with `runbook plan
//!   --out` and run with `runbook run --plan` (re-planned when refused as stale, as its message
//!   says to), the clean-up under the same lock: in 50 trials the record always ends at plan 3.

use std::process::Output;

use runbook_tests::moto::{Moto, moto};
use runbook_tests::{Scratch, project_root};
use serde_json::{Value, json};

/// The A record's addresses (empty when there is none).
fn addresses(moto: &Moto, zone: &str, name: &str) -> Value {
    moto.boto3(&format!(
        "sets = boto3.client('route53').list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']\n\
         emit(sorted(v['Value'] for s in sets if s['Name'] == '{name}' and s['Type'] == 'A' for v in s['ResourceRecords']))"
    ))
}

/// Plan N's addresses.
fn plan_values(plan: u32) -> String {
    format!("192.0.2.{plan}")
}

/// What an enactor without locks does: apply the plan it holds, marker and record at once.
const PLAIN: &str = "schemaVersion: '0.3'
parameters:
  HostedZoneId: {type: String}
  RecordName: {type: String}
  PlanNumber: {type: Integer}
  Values: {type: StringList}
mainSteps:
  - name: apply
    action: aws:executeAwsApi
    inputs:
      Service: route53
      Api: ChangeResourceRecordSets
      HostedZoneId: '{{ HostedZoneId }}'
      ChangeBatch:
        Changes:
          - Action: UPSERT
            ResourceRecordSet: {Name: '{{ RecordName }}', Type: A, TTL: 60, ResourceRecords: [{Value: '192.0.2.{{ PlanNumber }}'}]}
          - Action: UPSERT
            ResourceRecordSet: {Name: '_plan.{{ RecordName }}', Type: TXT, TTL: 60, ResourceRecords: [{Value: '\"plan={{ PlanNumber }} token=none\"'}]}
";

/// The clean-up: the records of a plan older than the newest (3) are deleted, marker and all.
const CLEANUP: &str = "schemaVersion: '0.3'
parameters:
  HostedZoneId: {type: String}
  RecordName: {type: String}
  Newest: {type: Integer}
mainSteps:
  - name: deleteOldPlans
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {Zone: '{{ HostedZoneId }}', Name: '{{ RecordName }}', Newest: '{{ Newest }}'}
      Script: |
        import re, boto3
        def h(e, c):
            route53 = boto3.client('route53')
            sets = route53.list_resource_record_sets(HostedZoneId=e['Zone'])['ResourceRecordSets']
            ours = [s for s in sets if (s['Name'], s['Type']) in [(e['Name'], 'A'), ('_plan.' + e['Name'], 'TXT')]]
            markers = [s for s in ours if s['Type'] == 'TXT']
            if not markers:
                return {'Deleted': 0}
            plan = int(re.search(r'plan=(\\d+)', markers[0]['ResourceRecords'][0]['Value']).group(1))
            if plan >= e['Newest']:
                return {'Deleted': 0}
            changes = [{'Action': 'DELETE', 'ResourceRecordSet': s} for s in ours]
            route53.change_resource_record_sets(HostedZoneId=e['Zone'], ChangeBatch={'Changes': changes})
            return {'Deleted': plan}
";

struct Trial<'m> {
    moto: &'m Moto,
    scratch: Scratch,
    zone: String,
    name: String,
}

impl<'m> Trial<'m> {
    fn new(moto: &'m Moto, label: &str, index: usize) -> Trial<'m> {
        let scratch = Scratch::new(&format!("race-{label}-{index}"));
        let domain = format!("race-{label}-{index}-{}.example.com", std::process::id());
        let zone = moto.hosted_zone(&domain);
        Trial { moto, scratch, zone, name: format!("api.{domain}.") }
    }

    /// `runbook ARGS` as a process against moto, with this trial's journal.
    fn runbook(&self, args: &[String]) -> Output {
        let python = project_root().join(".venv/bin/python");
        let mut command = self.moto.command(&self.scratch);
        command.env("RUNBOOK_PYTHON", python).args(args);
        command.output().unwrap()
    }

    fn parameters(&self, plan: u32) -> Vec<String> {
        [
            format!("HostedZoneId={}", self.zone),
            format!("RecordName={}", self.name),
            format!("PlanNumber={plan}"),
            format!("Values={}", plan_values(plan)),
        ]
        .into_iter()
        .flat_map(|parameter| ["-p".to_owned(), parameter])
        .collect()
    }

    fn clean_up(&self, locked: bool) {
        let path = self.scratch.runbook("cleanup.yaml", CLEANUP);
        let mut args: Vec<String> = ["run", &path, "-p"].map(str::to_owned).to_vec();
        args.extend([format!("HostedZoneId={}", self.zone), "-p".into(), format!("RecordName={}", self.name)]);
        args.extend(["-p".into(), "Newest=3".into()]);
        if locked {
            args.extend(["--lock".into(), format!("dns/{}", self.zone), "--lock-timeout".into(), "120s".into()]);
        }
        let output = self.runbook(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }

    fn addresses(&self) -> Value {
        addresses(self.moto, &self.zone, &self.name)
    }

    /// Plain runbooks: all three enactors start at once, the one with plan 1 slowed before
    /// it applies; then the clean-up.
    fn plain(&self) -> Value {
        let path = self.scratch.runbook("plain.yaml", PLAIN);
        std::thread::scope(|scope| {
            for plan in 1..=3 {
                let mut args: Vec<String> = vec!["run".into(), path.clone()];
                args.extend(self.parameters(plan));
                if plan == 1 {
                    args.extend(["--inject-delay".into(), "apply=1500ms".into()]);
                }
                scope.spawn(move || {
                    let output = self.runbook(&args);
                    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                });
            }
        });
        self.clean_up(false);
        self.addresses()
    }

    /// The shipped enactor under the zone's lock, each plan saved first and run with --plan;
    /// the enactor with plan 1 starts its run `delay` after saving its plan. A plan refused as
    /// stale is made again (as the refusal says to); an older plan refused by the runbook ends
    /// that enactor.
    fn locked(&self, delays: [u64; 3]) -> Value {
        let path = project_root().join("runbooks/dns-apply-plan.yaml").display().to_string();
        std::thread::scope(|scope| {
            for plan in 1..=3u32 {
                let path = &path;
                let delay = delays[plan as usize - 1];
                scope.spawn(move || {
                    let saved = self.scratch.path(&format!("plan-{plan}.json"));
                    for _ in 0..10 {
                        let mut args: Vec<String> = vec!["plan".into(), path.clone()];
                        args.extend(self.parameters(plan));
                        args.extend(["--out".into(), saved.clone()]);
                        let planned = self.runbook(&args);
                        assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
                        std::thread::sleep(std::time::Duration::from_millis(delay));
                        let args: Vec<String> =
                            ["run", "--plan", &saved, "--lock-timeout", "120s"].map(str::to_owned).to_vec();
                        let ran = self.runbook(&args);
                        let stderr = String::from_utf8_lossy(&ran.stderr);
                        match ran.status.code() {
                            Some(0) => return,
                            // Stale: another plan applied since this one was saved.
                            Some(8) if stderr.contains("saved plan is stale") => {
                                STALE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                continue;
                            }
                            // The runbook refused a plan older than the one applied.
                            Some(4) => {
                                OLDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                assert!(String::from_utf8_lossy(&ran.stdout).contains("is not newer than plan"));
                                return;
                            }
                            other => panic!("plan {plan}: exit {other:?}\n{stderr}"),
                        }
                    }
                    panic!("plan {plan} was refused as stale ten times");
                });
            }
        });
        self.clean_up(true);
        self.addresses()
    }
}

/// Saved plans refused as stale, and plans the runbook refused as older than the one applied.
static STALE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static OLDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A number from 0 to `below` (exclusive), different each call.
fn jitter(below: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let next = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ u64::from(std::process::id());
    let mixed = (next ^ (next >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (mixed >> 33) % below
}

#[test]
fn without_locks_the_stale_plan_lands_and_with_them_the_newest_plan_always_wins() {
    let Some(moto) = moto("without_locks_the_stale_plan_lands_and_with_them_the_newest_plan_always_wins") else {
        return;
    };
    let newest = json!([plan_values(3)]);
    // Without locks: the record ends old or empty at least once.
    let plain: Vec<Value> = (0..5).map(|index| Trial::new(moto, "plain", index).plain()).collect();
    let failed = plain.iter().filter(|addresses| **addresses != newest).count();
    eprintln!("without locks: {failed} of {} trials ended old or empty: {plain:?}", plain.len());
    assert!(failed >= 1, "the race never showed without locks: {plain:?}");

    // With locks, fencing and stale-plan refusal: 50 trials, five at a time, never.
    let trials = 50;
    let mut ended = Vec::new();
    for batch in 0..trials / 5 {
        let results: Vec<Value> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..5)
                .map(|i| {
                    // The enactor with plan 1 is the slow one; the others start within 100 ms.
                    let delays = [300 + jitter(900), jitter(100), jitter(100)];
                    scope.spawn(move || Trial::new(moto, "locked", batch * 5 + i).locked(delays))
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        ended.extend(results);
    }
    let wrong: Vec<&Value> = ended.iter().filter(|addresses| **addresses != newest).collect();
    let (stale, older) =
        (STALE.load(std::sync::atomic::Ordering::Relaxed), OLDER.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!(
        "with locks: {} of {trials} trials ended anywhere but plan 3; {stale} saved plans refused as stale, {older} \
         plans refused as older than the one applied",
        wrong.len()
    );
    assert!(wrong.is_empty(), "the record ended old or empty: {wrong:?}");
}
