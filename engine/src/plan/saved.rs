//! A saved plan (`runbook plan FILE --out PLAN.json`, `runbook run --plan PLAN.json`): what a
//! run will do, fixed when it was planned: the runbook's hash, the typed parameters (secrets
//! left out, named so they can be given again) and, per named lock, the newest fencing token
//! that had begun to apply. A run of it is refused when the runbook or the parameters changed,
//! or when another holder applied under one of its locks since (Terraform's "Saved plan is
//! stale"): the plan was made against a world that is gone.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::model::Runbook;
use crate::template;

/// The saved-plan format this engine writes and reads.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub format: u32,
    /// The runbook file, as given to `runbook plan`.
    pub runbook: String,
    /// SHA-256 of its bytes then.
    pub runbook_hash: String,
    /// The supplied values, typed; secret parameters are left out (see `secrets`).
    pub parameters: Map<String, Value>,
    /// Secret parameters that were supplied: `run --plan` needs them again with `-p`.
    pub secrets: Vec<String>,
    /// Each named lock the run takes, with the newest token that had begun to apply.
    pub locks: Vec<SavedLock>,
    pub planned_at: String,
    /// The store it was planned against (a state directory, `s3://...`): it records the plan,
    /// and a run against another store is refused.
    pub store: String,
    /// SHA-256 of everything above: a plan edited by hand is refused, and the store records it,
    /// so a plan whose digest was made again after an edit is unknown to the store.
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedLock {
    pub name: String,
    /// The fencing token of the newest holder that had begun to apply under this name (0:
    /// none had).
    pub applied: u64,
}

/// Why a saved plan cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Stale {
    #[error("{path} is not a saved plan: {why}")]
    Unreadable { path: String, why: String },
    #[error("{path} was changed after it was saved (its digest does not match)")]
    Edited { path: String },
    #[error("{path} was not saved against this store (saved against {saved}; this run uses {now})")]
    Unknown { path: String, saved: String, now: String },
    #[error("{path} has plan format {found}; this runbook reads format {FORMAT}")]
    Format { path: String, found: u32 },
    #[error("the runbook {runbook} changed since the plan was saved (hash {saved} then, {now} now)")]
    RunbookChanged { runbook: String, saved: String, now: String },
    #[error("parameter `{name}` is {now} now, but the plan was saved with {saved}")]
    ParameterChanged { name: String, saved: String, now: String },
    #[error("the plan was saved with the locks {saved:?}, but this run takes {now:?}")]
    LocksChanged { saved: Vec<String>, now: Vec<String> },
    #[error(
        "saved plan is stale: under lock `{name}`, the holder with token {now} applied since the plan was saved \
         (newest then: {saved})"
    )]
    AppliedSince { name: String, saved: u64, now: u64 },
}

impl Stale {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            Stale::Unreadable { .. } | Stale::Edited { .. } | Stale::Format { .. } => {
                "make the plan again with `runbook plan FILE -p ... --out PLAN.json`"
            }
            Stale::Unknown { .. } => {
                "run it with the store it was planned against (--state or --state-dir), or make the plan again \
                 against this one"
            }
            Stale::RunbookChanged { .. } => {
                "a saved plan runs the runbook it was made of: plan the changed runbook again with `runbook plan FILE \
                 -p ... --out PLAN.json`"
            }
            Stale::ParameterChanged { .. } => {
                "a saved plan runs with the values it was saved with: leave the -p out, or plan again with the new \
                 value"
            }
            _ => {
                "the plan was made against a world that changed: look at what ran since (`runbook locks list`, \
                 `runbook executions list`), then plan again with `runbook plan FILE -p ... --out PLAN.json`"
            }
        }
    }
}

impl SavedPlan {
    /// A plan of `runbook` (read from `path`, with `hash`) for `parameters` as validated, and
    /// the newest applied token of each lock.
    pub fn new(
        runbook: &Runbook,
        path: &str,
        hash: &str,
        parameters: &Map<String, Value>,
        locks: Vec<SavedLock>,
        store: &str,
    ) -> SavedPlan {
        let secret = |name: &str| runbook.parameter(name).is_some_and(|parameter| parameter.secret);
        let mut plan = SavedPlan {
            format: FORMAT,
            runbook: path.to_owned(),
            runbook_hash: hash.to_owned(),
            parameters: parameters
                .iter()
                .filter(|(name, _)| !secret(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: parameters.keys().filter(|name| secret(name)).cloned().collect(),
            locks,
            planned_at: crate::journal::now(),
            store: store.to_owned(),
            digest: String::new(),
        };
        plan.digest = plan.compute_digest();
        plan
    }

    fn compute_digest(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.digest = String::new();
        let text = serde_json::to_string(&unsigned).unwrap_or_default();
        crate::exec::content_hash(text.as_bytes())
    }

    /// Reads a saved plan, refusing one that is not one, was edited, or is of another format.
    pub fn read(path: &str, text: &str) -> Result<SavedPlan, Stale> {
        let value: Value = serde_json::from_str(text)
            .map_err(|error| Stale::Unreadable { path: path.to_owned(), why: error.to_string() })?;
        if let Some(found) = value.get("format").and_then(Value::as_u64).filter(|found| *found != u64::from(FORMAT)) {
            return Err(Stale::Format { path: path.to_owned(), found: found as u32 });
        }
        let plan: SavedPlan = serde_json::from_value(value)
            .map_err(|error| Stale::Unreadable { path: path.to_owned(), why: error.to_string() })?;
        if plan.digest != plan.compute_digest() {
            return Err(Stale::Edited { path: path.to_owned() });
        }
        Ok(plan)
    }

    /// The runbook is the one planned (by its hash).
    pub fn check_runbook(&self, hash: &str) -> Result<(), Stale> {
        if self.runbook_hash == hash {
            return Ok(());
        }
        Err(Stale::RunbookChanged {
            runbook: self.runbook.clone(),
            saved: self.runbook_hash.clone(),
            now: hash.to_owned(),
        })
    }

    /// A value given again with `-p` is the one planned (secrets may only be given).
    pub fn check_parameter(&self, name: &str, now: &Value) -> Result<(), Stale> {
        match self.parameters.get(name) {
            Some(saved) if saved != now => {
                Err(Stale::ParameterChanged { name: name.to_owned(), saved: saved.to_string(), now: now.to_string() })
            }
            None if !self.secrets.iter().any(|secret| secret == name) => {
                Err(Stale::ParameterChanged { name: name.to_owned(), saved: "no value".into(), now: now.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// Under the locks this run holds: the same locks, and no holder applied under one since
    /// the plan was saved.
    pub fn check_locks(
        &self,
        held: &[String],
        applied: impl Fn(&str) -> crate::journal::Result<u64>,
    ) -> Result<(), Stale> {
        let mut saved: Vec<String> = self.locks.iter().map(|lock| lock.name.clone()).collect();
        let mut now = held.to_vec();
        saved.sort();
        now.sort();
        if saved != now {
            return Err(Stale::LocksChanged { saved, now });
        }
        for lock in &self.locks {
            // A store that cannot say is no proof of freshness.
            let current = applied(&lock.name).unwrap_or(u64::MAX);
            if current > lock.applied {
                return Err(Stale::AppliedSince { name: lock.name.clone(), saved: lock.applied, now: current });
            }
        }
        Ok(())
    }
}

/// The names of the locks a run of `runbook` with these supplied `parameters` takes (its
/// `x-locks`, rendered, then `extra`), in the order they are taken; a name that cannot be known
/// before the run (it reads the execution id) is left out.
pub fn lock_names(runbook: &Runbook, parameters: &Map<String, Value>, extra: &[String]) -> Result<Vec<String>, String> {
    let bound = super::values::bind(runbook, parameters, &super::values::NothingKnown);
    struct Known<'b>(&'b super::values::Bound);
    impl template::render::Scope for Known<'_> {
        fn lookup(&self, reference: template::Reference<'_>) -> template::render::Lookup<'_> {
            match reference {
                template::Reference::Parameter(name) => match self.0.get(name) {
                    Some(binding) if binding.is_known() => {
                        template::render::Lookup::Known(std::borrow::Cow::Borrowed(&binding.value))
                    }
                    _ => template::render::Lookup::Unknown,
                },
                _ => template::render::Lookup::Unknown,
            }
        }
    }
    let config = template::config_for(runbook);
    let mut names = Vec::new();
    for spec in &runbook.locks {
        let rendered = template::render::render(&Value::String(spec.name.clone()), &Known(&bound), config)
            .map_err(|error| format!("lock `{}`: {error}", spec.name))?;
        if !rendered.unknown.is_empty() {
            continue;
        }
        let name = rendered.value.as_str().unwrap_or_default().to_owned();
        crate::journal::named::check_name(&name)
            .map_err(|why| format!("lock `{}` renders to {name:?}: {why}", spec.name))?;
        names.push(name);
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runbook() -> Runbook {
        let text = "schemaVersion: '0.3'\nparameters:\n  Zone: {type: String}\n  Token: {type: String, x-secret: true}\n\
                    x-locks: ['dns/{{ Zone }}']\nmainSteps:\n  - name: wait\n    action: aws:sleep\n    inputs: {Duration: PT1S}\n";
        let loaded =
            crate::document::load("r.yaml".into(), text.as_bytes().to_vec(), Some(crate::document::Format::Yaml));
        crate::validate::validate(loaded, &crate::validate::Config::default()).runbook.unwrap()
    }

    fn parameters() -> Map<String, Value> {
        json!({"Zone": "Z1", "Token": "s3cret"}).as_object().unwrap().clone()
    }

    #[test]
    fn a_saved_plan_keeps_no_secret_and_refuses_edits() {
        let runbook = runbook();
        let locks = vec![SavedLock { name: "dns/Z1".into(), applied: 4 }];
        let plan = SavedPlan::new(&runbook, "r.yaml", "abc", &parameters(), locks, "state");
        let text = serde_json::to_string_pretty(&plan).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(plan.secrets, ["Token"]);
        assert_eq!(SavedPlan::read("p.json", &text).unwrap(), plan);
        let edited = text.replace("\"applied\": 4", "\"applied\": 9");
        assert_eq!(SavedPlan::read("p.json", &edited), Err(Stale::Edited { path: "p.json".into() }));
        assert!(matches!(SavedPlan::read("p.json", "{"), Err(Stale::Unreadable { .. })));
        let newer = text.replace("\"format\": 1", "\"format\": 7");
        assert!(matches!(SavedPlan::read("p.json", &newer), Err(Stale::Format { found: 7, .. })));
    }

    #[test]
    fn a_plan_is_stale_once_another_holder_applied_under_its_lock() {
        let runbook = runbook();
        assert_eq!(lock_names(&runbook, &parameters(), &[]).unwrap(), ["dns/Z1"]);
        let locks = vec![SavedLock { name: "dns/Z1".into(), applied: 4 }];
        let plan = SavedPlan::new(&runbook, "r.yaml", "abc", &parameters(), locks, "state");
        let held = ["dns/Z1".to_owned()];
        assert_eq!(plan.check_locks(&held, |_| Ok(4)), Ok(()));
        assert_eq!(
            plan.check_locks(&held, |_| Ok(5)),
            Err(Stale::AppliedSince { name: "dns/Z1".into(), saved: 4, now: 5 })
        );
        assert!(matches!(plan.check_locks(&["dns/Z2".to_owned()], |_| Ok(0)), Err(Stale::LocksChanged { .. })));
        assert!(plan.check_runbook("abc").is_ok());
        assert!(matches!(plan.check_runbook("abd"), Err(Stale::RunbookChanged { .. })));
        assert!(plan.check_parameter("Zone", &json!("Z1")).is_ok());
        assert!(plan.check_parameter("Token", &json!("other")).is_ok(), "a secret is given again");
        assert!(matches!(plan.check_parameter("Zone", &json!("Z2")), Err(Stale::ParameterChanged { .. })));
    }
}
