//! The catalogue of Automation actions (reference section 6): which exist, which are
//! public, their timeouts, built-in outputs and cancel rules. Executors (one file per
//! action under `actions/`) register here as they are written.

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
    }
}

const DAY: u64 = 24 * 3600;

pub static ACTIONS: &[ActionInfo] = &[
    ActionInfo {
        cancel_target: false,
        default_timeout_seconds: Some(7 * DAY),
        max_timeout_seconds: Some(30 * DAY),
        builtin_outputs: &["ApprovalStatus", "ApproverDecisions"],
        ..action("aws:approve")
    },
    ActionInfo { returns_data: true, ..action("aws:assertAwsResourceProperty") },
    ActionInfo { builtin_outputs: &["NextStep"], ..action("aws:branch") },
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
        ..action("aws:loop")
    },
    ActionInfo { cancel_target: false, ..action("aws:pause") },
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
    ActionInfo { cancel_target: false, max_timeout_seconds: Some(604_799), ..action("aws:sleep") },
    ActionInfo { on_cancel_allowed: false, ..action("aws:updateVariable") },
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
