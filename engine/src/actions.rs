//! The catalogue of Automation actions (reference section 6): which exist, which are
//! public, their timeouts, built-in outputs and cancel rules; and the executors, one file
//! per action under `actions/`, each registered by one line in [`execute`].

pub mod api;
pub mod approve;
pub mod assert_aws_resource_property;
pub mod branch;
pub mod change_instance_state;
pub mod copy_image;
pub mod create_image;
pub mod create_stack;
pub mod create_tags;
pub mod delete_image;
pub mod delete_stack;
pub mod execute_automation;
pub mod execute_aws_api;
pub mod execute_script;
pub mod execute_state_machine;
pub mod invoke_lambda_function;
pub mod loop_;
pub mod pause;
pub mod run_command;
pub mod run_instances;
pub mod sleep;
pub mod update_variable;
pub mod wait_for_aws_resource_property;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::document::model::{Runbook, Step};
use crate::exec::{Config, Observer, Redactor};
use crate::journal::Journal;
use crate::plan::Outcome;

/// What an executor gets besides its rendered inputs.
pub struct Context<'a> {
    pub execution_id: &'a str,
    pub step: &'a Step,
    /// The loop iteration (1-based), 0 outside loops.
    pub iteration: u32,
    pub attempt: u32,
    pub runbook: &'a Runbook,
    /// The runbook's `assumeRole`, rendered; AWS calls are made as this role.
    pub assume_role: Option<&'a str>,
    /// The runbook file: attachments and child runbooks are found beside it.
    pub runbook_path: &'a Path,
    pub journal: &'a Journal,
    pub config: &'a Config,
    pub observer: &'a dyn Observer,
    pub redactor: &'a Redactor,
    /// Turns true on Ctrl-C; a child execution handles it itself.
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// What a successful attempt produced.
#[derive(Debug)]
pub struct Output {
    /// The object selectors read (reference 7.2): `{"Payload": ...}` for a script.
    pub root: Value,
    /// Built-in outputs (reference 5.5).
    pub builtins: Map<String, Value>,
    /// For a branch, the choice taken; `Succeeded` for everything else.
    pub outcome: Outcome,
    /// Other state changes: `{"variables": {name: value}}`.
    pub effects: Value,
    /// What the action printed (a script's stdout and stderr).
    pub log: Option<String>,
    /// Values that must not be shown or stored (an AWS response's sensitive members, such as
    /// a decrypted SecureString): redacted from here on.
    pub secrets: Vec<Value>,
}

impl Output {
    pub fn empty() -> Output {
        Output {
            root: Value::Object(Map::new()),
            builtins: Map::new(),
            outcome: Outcome::Succeeded,
            effects: Value::Null,
            log: None,
            secrets: Vec::new(),
        }
    }
}

/// Why an attempt did not succeed.
#[derive(Debug)]
pub enum Failure {
    Error {
        message: String,
        log: Option<String>,
    },
    /// A person must answer first (`aws:approve`, `aws:pause`) and nobody here can.
    Waiting {
        message: Option<String>,
        approvers: Value,
    },
    /// A child execution was cancelled.
    Cancelled,
}

impl Failure {
    pub fn error(message: impl Into<String>) -> Failure {
        Failure::Error { message: message.into(), log: None }
    }
}

pub type Result = std::result::Result<Output, Failure>;

/// Runs one attempt of a step with its rendered inputs. The registry: one line per action.
pub fn execute<'c>(
    context: &'c Context<'c>,
    inputs: &'c Map<String, Value>,
) -> Pin<Box<dyn Future<Output = Result> + 'c>> {
    match context.step.action.as_str() {
        "aws:approve" => Box::pin(approve::execute(context, inputs)),
        "aws:assertAwsResourceProperty" => Box::pin(assert_aws_resource_property::execute(context, inputs)),
        "aws:branch" => Box::pin(async move { branch::execute(context, inputs) }),
        "aws:changeInstanceState" => Box::pin(change_instance_state::execute(context, inputs)),
        "aws:copyImage" => Box::pin(copy_image::execute(context, inputs)),
        "aws:createImage" => Box::pin(create_image::execute(context, inputs)),
        "aws:createStack" => Box::pin(create_stack::execute(context, inputs)),
        "aws:createTags" => Box::pin(create_tags::execute(context, inputs)),
        "aws:deleteImage" => Box::pin(delete_image::execute(context, inputs)),
        "aws:deleteStack" => Box::pin(delete_stack::execute(context, inputs)),
        "aws:executeAutomation" => Box::pin(execute_automation::execute(context, inputs)),
        "aws:executeAwsApi" => Box::pin(execute_aws_api::execute(context, inputs)),
        "aws:executeScript" => Box::pin(execute_script::execute(context, inputs)),
        "aws:executeStateMachine" => Box::pin(execute_state_machine::execute(context, inputs)),
        "aws:invokeLambdaFunction" => Box::pin(invoke_lambda_function::execute(context, inputs)),
        "aws:runCommand" => Box::pin(run_command::execute(context, inputs)),
        "aws:runInstances" => Box::pin(run_instances::execute(context, inputs)),
        "aws:waitForAwsResourceProperty" => Box::pin(wait_for_aws_resource_property::execute(context, inputs)),
        "aws:pause" => Box::pin(pause::execute(context, inputs)),
        "aws:sleep" => Box::pin(sleep::execute(context, inputs)),
        "aws:updateVariable" => Box::pin(async move { update_variable::execute(context, inputs) }),
        other => {
            let message = match lookup(other) {
                Some(info) if info.internal => format!("`{other}` is internal to AWS and cannot run outside it"),
                Some(_) => format!("`{other}` has no local executor"),
                None => format!("unknown action `{other}`"),
            };
            Box::pin(async move { Err(Failure::error(message)) })
        }
    }
}

/// Everything the engine knows about an action without running it.
#[derive(Debug)]
pub struct ActionInfo {
    pub name: &'static str,
    /// AWS-internal actions appear only in AWS-owned runbooks; they parse but cannot run.
    pub internal: bool,
    /// Whether `onCancel: step:X` may target a step with this action (V9).
    pub cancel_target: bool,
    /// Whether the step itself may carry `onCancel` (V9).
    pub on_cancel_allowed: bool,
    /// Timeout applied when `timeoutSeconds` is absent (section 8.4).
    pub default_timeout_seconds: Option<u64>,
    /// Hard maximum for `timeoutSeconds` (section 8.2 warnings, 8.4).
    pub max_timeout_seconds: Option<u64>,
    /// Outputs every step of this action has without an `outputs` entry (section 5.5).
    pub builtin_outputs: &'static [&'static str],
    /// Whether user-defined `outputs` are meaningful: the action returns data.
    pub returns_data: bool,
    /// Whether a step whose last attempt never finished may simply run again on resume: the
    /// action changes nothing outside the execution (or, for `aws:executeAutomation`, its
    /// child is found again by an idempotency key and resumed, not started twice).
    pub safe_to_repeat: bool,
}

const fn action(name: &'static str) -> ActionInfo {
    ActionInfo {
        name,
        internal: false,
        cancel_target: true,
        on_cancel_allowed: true,
        default_timeout_seconds: None,
        max_timeout_seconds: None,
        builtin_outputs: &[],
        returns_data: false,
        safe_to_repeat: false,
    }
}

const DAY: u64 = 24 * 3600;

pub static ACTIONS: &[ActionInfo] = &[
    ActionInfo {
        cancel_target: false,
        default_timeout_seconds: Some(7 * DAY),
        max_timeout_seconds: Some(30 * DAY),
        builtin_outputs: &["ApprovalStatus", "ApproverDecisions"],
        safe_to_repeat: true,
        ..action("aws:approve")
    },
    ActionInfo { returns_data: true, ..action("aws:assertAwsResourceProperty") },
    ActionInfo { builtin_outputs: &["NextStep"], safe_to_repeat: true, ..action("aws:branch") },
    ActionInfo { default_timeout_seconds: Some(3600), ..action("aws:changeInstanceState") },
    ActionInfo { cancel_target: false, builtin_outputs: &["ImageId", "ImageState"], ..action("aws:copyImage") },
    ActionInfo { cancel_target: false, builtin_outputs: &["ImageId", "ImageState"], ..action("aws:createImage") },
    ActionInfo {
        cancel_target: false,
        builtin_outputs: &["StackId", "StackStatus", "StackStatusReason"],
        returns_data: true,
        ..action("aws:createStack")
    },
    ActionInfo { cancel_target: false, ..action("aws:createTags") },
    action("aws:deleteImage"),
    ActionInfo { returns_data: true, ..action("aws:deleteStack") },
    ActionInfo {
        builtin_outputs: &["Output", "ExecutionId", "Status"],
        returns_data: true,
        safe_to_repeat: true,
        ..action("aws:executeAutomation")
    },
    // AWS limits each API call to 25 s, not the step: timeoutSeconds may be longer (245
    // AWS-owned steps set it so), so no step maximum applies.
    ActionInfo { returns_data: true, ..action("aws:executeAwsApi") },
    ActionInfo {
        max_timeout_seconds: Some(600),
        builtin_outputs: &["Payload", "OutputPayload"],
        returns_data: true,
        ..action("aws:executeScript")
    },
    ActionInfo {
        builtin_outputs: &[
            "executionArn",
            "input",
            "name",
            "output",
            "startDate",
            "stateMachineArn",
            "status",
            "stopDate",
        ],
        returns_data: true,
        ..action("aws:executeStateMachine")
    },
    ActionInfo {
        max_timeout_seconds: Some(300),
        builtin_outputs: &["StatusCode", "FunctionError", "LogResult", "Payload", "OutputPayload"],
        returns_data: true,
        ..action("aws:invokeLambdaFunction")
    },
    ActionInfo { builtin_outputs: &["Response", "ResponseCode"], returns_data: true, ..action("aws:invokeWebhook") },
    ActionInfo {
        on_cancel_allowed: false,
        builtin_outputs: &["CurrentIteration", "CurrentIteratorValue"],
        safe_to_repeat: true,
        ..action("aws:loop")
    },
    ActionInfo { cancel_target: false, safe_to_repeat: true, ..action("aws:pause") },
    ActionInfo {
        builtin_outputs: &["CommandId", "Status", "ResponseCode", "Output", "OutputPayload"],
        returns_data: true,
        ..action("aws:runCommand")
    },
    ActionInfo {
        cancel_target: false,
        builtin_outputs: &["InstanceIds", "InstanceStates"],
        returns_data: true,
        ..action("aws:runInstances")
    },
    ActionInfo {
        cancel_target: false,
        max_timeout_seconds: Some(604_799),
        safe_to_repeat: true,
        ..action("aws:sleep")
    },
    ActionInfo { on_cancel_allowed: false, safe_to_repeat: true, ..action("aws:updateVariable") },
    ActionInfo { default_timeout_seconds: Some(3600), ..action("aws:waitForAwsResourceProperty") },
    ActionInfo { internal: true, ..action("aws:putServerUpgradeMetrics") },
    ActionInfo { internal: true, returns_data: true, ..action("aws:shareSQLMedia") },
    ActionInfo { internal: true, ..action("aws:installDistributorPackageOnAzure") },
];

/// Looks an action up by its exact name (action names are case-sensitive).
pub fn lookup(name: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|info| info.name == name)
}

/// The public actions, for messages and `runbook --help`.
pub fn public_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().filter(|info| !info.internal).map(|info| info.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_three_public_actions() {
        assert_eq!(public_names().count(), 23);
        assert!(lookup("aws:putServerUpgradeMetrics").unwrap().internal);
        assert!(lookup("aws:runShellScript").is_none());
    }
}
