//! `aws:deleteImage` (reference 6.9): deregister an AMI and delete the snapshots behind it.

use serde_json::{Map, Value, json};

use super::{Action, Context, Output, Result, api};

pub const ACTION: Action = Action { execute: executor!(execute), calls_aws: true, ..Action::new("aws:deleteImage") };

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let image = api::text(inputs, "ImageId")?;
    let params: Map<String, Value> = [("ImageIds".to_string(), json!([image]))].into_iter().collect();
    let described = api::call_or_fail(context, "ec2", "DescribeImages", &params).await?;
    let snapshots: Vec<String> = described["Images"][0]["BlockDeviceMappings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mapping| mapping["Ebs"]["SnapshotId"].as_str().map(str::to_string))
        .collect();
    let params: Map<String, Value> = [("ImageId".to_string(), json!(image))].into_iter().collect();
    api::call_or_fail(context, "ec2", "DeregisterImage", &params).await?;
    for snapshot in snapshots {
        let params: Map<String, Value> = [("SnapshotId".to_string(), json!(snapshot))].into_iter().collect();
        api::call_or_fail(context, "ec2", "DeleteSnapshot", &params).await?;
    }
    Ok(Output::empty())
}
