//! The values a running execution renders templates with: parameters, the outputs of steps
//! that succeeded, variables, the current loop iteration and the system values of section 5.2.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::aws::Aws;
use crate::plan::Plan;
use crate::template::{Lookup, Reference, Scope, visit_templates};
pub use crate::timeline::Clock;

/// Everything a reference can read during a run.
#[derive(Debug, Default)]
pub struct RunScope {
    pub execution_id: String,
    pub parameters: Map<String, Value>,
    /// Step name -> output name -> value (built-in and declared outputs).
    pub outputs: HashMap<String, Map<String, Value>>,
    pub variables: Map<String, Value>,
    pub system: System,
}

/// System values that come from the environment rather than the runbook.
#[derive(Clone, Debug, Default)]
pub struct System {
    pub region: Option<String>,
    pub account_id: Option<String>,
    /// The partition STS reported; else it follows from the region.
    pub partition_name: Option<String>,
    /// `{{ssm:/name}}` values read from Parameter Store for parameter defaults.
    pub ssm: HashMap<String, Value>,
    /// What time it is: the system clock, or a fixed start moved on by tokio's clock (tests).
    pub clock: Clock,
    /// `{{ automation:FENCING_TOKEN }}`: the token of the run's first named lock, once granted.
    pub fencing_token: Option<u64>,
}

impl System {
    /// Region from `AWS_REGION` or `AWS_DEFAULT_REGION`; the account from
    /// `RUNBOOK_ACCOUNT_ID` until the AWS client asks STS for it.
    pub fn from_environment() -> System {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        System {
            region: variable("AWS_REGION").or_else(|| variable("AWS_DEFAULT_REGION")),
            account_id: variable("RUNBOOK_ACCOUNT_ID"),
            partition_name: None,
            ssm: HashMap::new(),
            clock: Clock::default(),
            fencing_token: None,
        }
    }

    /// The partition a region belongs to.
    pub fn partition(&self) -> Option<&'static str> {
        let region = self.region.as_deref()?;
        Some(if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else if region.starts_with("us-iso-") {
            "aws-iso"
        } else if region.starts_with("us-isob-") {
            "aws-iso-b"
        } else {
            "aws"
        })
    }

    pub fn lookup(&self, reference: Reference<'_>, execution_id: &str) -> Lookup<'static> {
        let known = |text: String| Lookup::Known(Cow::Owned(Value::String(text)));
        match reference {
            Reference::Global("REGION") => self.region.clone().map_or(Lookup::Missing, known),
            Reference::Global("ACCOUNT_ID") => self.account_id.clone().map_or(Lookup::Missing, known),
            Reference::Global("AWS_PARTITION") => match &self.partition_name {
                Some(partition) => known(partition.clone()),
                None => self.partition().map_or(Lookup::Missing, |p| known(p.to_owned())),
            },
            Reference::Ssm(name) => {
                self.ssm.get(name).map_or(Lookup::Missing, |value| Lookup::Known(Cow::Owned(value.clone())))
            }
            // Evaluated when the step that uses them renders, in UTC (section 5.2).
            Reference::Global("DATE") => known(self.clock.now().strftime("%Y-%m-%d").to_string()),
            Reference::Global("DATE_TIME") => known(self.clock.now().strftime("%Y-%m-%d_%H.%M.%S").to_string()),
            Reference::Automation("EXECUTION_ID") => known(execution_id.to_owned()),
            Reference::Automation("FENCING_TOKEN") => {
                self.fencing_token.map_or(Lookup::Missing, |token| known(token.to_string()))
            }
            _ => Lookup::Missing,
        }
    }
}

/// System values that need AWS, looked up once before a run: the region from the AWS
/// configuration, the account and partition from STS when the runbook refers to them, and
/// the `{{ssm:/name}}` values of parameter defaults that are used (no caller value given).
/// Returns the values of SecureString parameters too, which must be redacted.
pub async fn resolve_system(
    plan: &Plan<'_>,
    supplied: &Map<String, Value>,
    base: &System,
    aws: &Aws,
) -> Result<(System, Vec<Value>), String> {
    let runbook = plan.runbook;
    let mut globals = HashSet::new();
    let mut names = Vec::new();
    let mut note = |text: &str, ssm_allowed: bool| {
        for (_, reference) in crate::template::references(text) {
            match reference {
                Reference::Global(name) => {
                    globals.insert(name.to_owned());
                }
                Reference::Ssm(name) if ssm_allowed => names.push(name.to_owned()),
                _ => {}
            }
        }
    };
    for parameter in &runbook.parameters {
        let used = !supplied.contains_key(&parameter.name);
        let default = parameter.default.as_ref().unwrap_or(&Value::Null);
        visit_templates(default, &mut Vec::new(), &mut |text, _| note(text, used));
    }
    if let Some(role) = &runbook.assume_role {
        note(role, false);
    }
    for id in plan.steps() {
        plan.step(id).visit_input_templates(|text, _| note(text, false));
    }

    let mut system = base.clone();
    // Only when used: finding a region may ask instance metadata, which takes seconds
    // where there is none.
    if system.region.is_none() && globals.contains("REGION") {
        system.region = aws.region().await.ok();
    }
    let needs_identity = globals.contains("ACCOUNT_ID") || globals.contains("AWS_PARTITION");
    if needs_identity && system.account_id.is_none() {
        let identity =
            aws.identity().await.map_err(|e| format!("global:ACCOUNT_ID needs the caller's identity from STS: {e}"))?;
        system.account_id = Some(identity.account.clone());
        system.partition_name = Some(identity.partition.clone());
    }
    let mut secrets = Vec::new();
    for name in names {
        let params: Map<String, Value> =
            [("Name".to_owned(), Value::String(name.clone())), ("WithDecryption".to_owned(), Value::Bool(true))]
                .into_iter()
                .collect();
        let call =
            crate::aws::Call { service: "ssm", api: "GetParameter", params: &params, role: None, token_seed: "" };
        let response = aws.call(&call).await.map_err(|e| format!("{{{{ssm:{name}}}}}: {e}"))?;
        let Some(value) = response.get("Parameter").and_then(|parameter| parameter.get("Value")) else { continue };
        secrets.extend(crate::aws::sensitive_values("ssm", "GetParameter", &response));
        system.ssm.insert(name, value.clone());
    }
    Ok((system, secrets))
}

impl RunScope {
    /// Sets a step's outputs, replacing those of an earlier iteration.
    pub fn set_outputs(&mut self, step: &str, outputs: Map<String, Value>) {
        self.outputs.insert(step.to_owned(), outputs);
    }
}

impl Scope for RunScope {
    fn lookup(&self, reference: Reference<'_>) -> Lookup<'_> {
        match reference {
            Reference::Parameter(name) => match self.parameters.get(name) {
                Some(value) => Lookup::Known(Cow::Borrowed(value)),
                None => Lookup::Missing,
            },
            Reference::StepOutput { step, output } => {
                match self.outputs.get(step).and_then(|outputs| outputs.get(output)) {
                    Some(value) => Lookup::Known(Cow::Borrowed(value)),
                    None => Lookup::Missing,
                }
            }
            Reference::Variable(name) => match self.variables.get(name) {
                Some(value) => Lookup::Known(Cow::Borrowed(value)),
                None => Lookup::Missing,
            },
            Reference::Global(_) | Reference::Automation(_) => self.system.lookup(reference, &self.execution_id),
            // Parameter Store lookups belong to parameter defaults, bound before the run.
            Reference::Ssm(_) => Lookup::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_region() {
        let system = |region: &str| System { region: Some(region.into()), ..System::default() };
        assert_eq!(system("cn-north-1").partition(), Some("aws-cn"));
        assert_eq!(system("us-gov-west-1").partition(), Some("aws-us-gov"));
        assert_eq!(system("eu-west-1").partition(), Some("aws"));
    }
}
