//! `aws:runCommand` (reference 6.19): send a Command document to managed nodes with SSM
//! `SendCommand` (through aws-sdk-ssm), then poll the command until every invocation ends.
//! The step fails unless the command succeeded on every node.

use aws_sdk_ssm::types::{CloudWatchOutputConfig, CommandInvocationStatus, CommandStatus, DocumentHashType, Target};
use serde_json::{Map, Value, json};

use super::{Context, Failure, Output, Result, api};

fn fail(error: impl std::error::Error) -> Failure {
    Failure::error(aws_smithy_types::error::display::DisplayErrorContext(error).to_string())
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(api::python_text).collect(),
        other => vec![api::python_text(other)],
    }
}

pub async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let config = context.config.aws.sdk_config(context.assume_role).await.map_err(|e| Failure::error(e.to_string()))?;
    let client = aws_sdk_ssm::Client::new(&config);
    let text = |key: &str| inputs.get(key).map(api::python_text);
    let mut send = client.send_command().document_name(api::text(inputs, "DocumentName")?);
    if inputs.contains_key("InstanceIds") {
        send = send.set_instance_ids(Some(api::texts(inputs, "InstanceIds")?));
    }
    for target in inputs.get("Targets").and_then(Value::as_array).into_iter().flatten() {
        let key = target.get("Key").map(api::python_text);
        let values = target.get("Values").map(strings);
        send = send.targets(Target::builder().set_key(key).set_values(values).build());
    }
    for (name, value) in inputs.get("Parameters").and_then(Value::as_object).into_iter().flatten() {
        send = send.parameters(name, strings(value));
    }
    if let Some(config) = inputs.get("CloudWatchOutputConfig") {
        send = send.cloud_watch_output_config(
            CloudWatchOutputConfig::builder()
                .set_cloud_watch_log_group_name(config.get("CloudWatchLogGroupName").map(api::python_text))
                .set_cloud_watch_output_enabled(
                    config.get("CloudWatchOutputEnabled").map(|v| api::python_text(v) == "True" || v == "true"),
                )
                .build(),
        );
    }
    let timeout = match inputs.get("TimeoutSeconds") {
        Some(value) => Some(
            api::python_text(value)
                .parse::<i32>()
                .map_err(|_| Failure::error("`TimeoutSeconds` must be an integer"))?,
        ),
        None => None,
    };
    let send = send
        .set_comment(text("Comment"))
        .set_document_version(text("DocumentVersion"))
        .set_document_hash(text("DocumentHash"))
        .set_document_hash_type(text("DocumentHashType").map(|t| DocumentHashType::from(t.as_str())))
        .set_max_concurrency(text("MaxConcurrency"))
        .set_max_errors(text("MaxErrors"))
        .set_output_s3_bucket_name(text("OutputS3BucketName"))
        .set_output_s3_key_prefix(text("OutputS3KeyPrefix"))
        .set_output_s3_region(text("OutputS3Region"))
        .set_service_role_arn(text("ServiceRoleArn"))
        .set_timeout_seconds(timeout);
    let sent = send.send().await.map_err(fail)?;
    let command_id = sent.command().and_then(|c| c.command_id()).unwrap_or_default().to_string();

    let (status, instances) = api::poll(context, || async {
        let listed = client.list_commands().command_id(&command_id).send().await.map_err(fail)?;
        let Some(command) = listed.commands().first() else { return Ok(None) };
        let status = command.status().cloned().unwrap_or(CommandStatus::Pending);
        if matches!(status, CommandStatus::Pending | CommandStatus::InProgress | CommandStatus::Cancelling) {
            return Ok(None);
        }
        Ok(Some((status, command.instance_ids().to_vec())))
    })
    .await?;
    let mut output = String::new();
    let mut response_code = -1;
    let mut failed = Vec::new();
    let mut record =
        |instance: &str, status: Option<&CommandInvocationStatus>, details: Option<&str>, out: &str, code: i32| {
            if status != Some(&CommandInvocationStatus::Success) {
                failed.push(format!("{instance}: {}", details.unwrap_or("failed")));
            }
            output.push_str(out);
            response_code = code;
        };
    if instances.is_empty() {
        // Sent to targets: the invocations name the nodes.
        let listed =
            client.list_command_invocations().command_id(&command_id).details(true).send().await.map_err(fail)?;
        for invocation in listed.command_invocations() {
            let plugin = invocation.command_plugins().last();
            record(
                invocation.instance_id().unwrap_or_default(),
                invocation.status(),
                invocation.status_details(),
                plugin.and_then(|p| p.output()).unwrap_or_default(),
                plugin.map_or(-1, |p| p.response_code()),
            );
        }
    }
    for instance in &instances {
        let invocation =
            client.get_command_invocation().command_id(&command_id).instance_id(instance).send().await.map_err(fail)?;
        let status = invocation.status().map(|s| CommandInvocationStatus::from(s.as_str()));
        record(
            instance,
            status.as_ref(),
            invocation.status_details(),
            invocation.standard_output_content().unwrap_or_default(),
            invocation.response_code(),
        );
    }
    if status != CommandStatus::Success || !failed.is_empty() {
        return Err(Failure::Error {
            message: format!("command {command_id} ended {}: {}", status.as_str(), failed.join("; ")),
            log: Some(output),
        });
    }
    let mut root = json!({
        "CommandId": command_id,
        "Status": status.as_str(),
        "ResponseCode": response_code,
        "Output": output,
    });
    if let Ok(payload @ Value::Object(_)) = serde_json::from_str::<Value>(&output) {
        root["Payload"] = payload;
    }
    root["OutputPayload"] = json!(root.to_string());
    let builtins = root.as_object().cloned().unwrap_or_default();
    Ok(Output { root, builtins, ..Output::empty() })
}
