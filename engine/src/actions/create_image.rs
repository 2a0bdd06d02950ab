//! `aws:createImage` (reference 6.6): an AMI from an instance, waited for until it is
//! available (later steps use its id at once).

use serde_json::{Map, Value, json};

use super::{Action, Context, Output, Result, api};

pub const ACTION: Action = Action {
    cancel_target: false,
    builtin_outputs: &["ImageId", "ImageState"],
    execute: executor!(execute),
    calls_aws: true,
    ..Action::new("aws:createImage")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let mut params = Map::new();
    params.insert("InstanceId".into(), json!(api::text(inputs, "InstanceId")?));
    params.insert("Name".into(), json!(api::text(inputs, "ImageName")?));
    for (input, member) in
        [("ImageDescription", "Description"), ("NoReboot", "NoReboot"), ("BlockDeviceMappings", "BlockDeviceMappings")]
    {
        if let Some(value) = inputs.get(input) {
            params.insert(member.into(), value.clone());
        }
    }
    let response = api::call_or_fail(context, "ec2", "CreateImage", &params).await?;
    let image = response["ImageId"].as_str().unwrap_or_default().to_string();
    wait_for_image(context, &image).await
}

/// Polls `DescribeImages` until the image is available (or failed), and reports it as the
/// image actions' outputs.
pub async fn wait_for_image(context: &Context<'_>, image: &str) -> Result {
    let params: Map<String, Value> = [("ImageIds".to_string(), json!([image]))].into_iter().collect();
    let state = api::poll(context, || async {
        let response = api::call_or_fail(context, "ec2", "DescribeImages", &params).await?;
        let state = response["Images"][0]["State"].as_str().unwrap_or("pending").to_string();
        Ok((state != "pending").then_some(state))
    })
    .await?;
    if state != "available" {
        return Err(super::Failure::error(format!("image {image} ended {state}")));
    }
    let root = json!({ "ImageId": image, "ImageState": state });
    Ok(Output { builtins: root.as_object().cloned().unwrap_or_default(), root, ..Output::empty() })
}
