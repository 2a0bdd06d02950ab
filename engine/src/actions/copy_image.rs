//! `aws:copyImage` (reference 6.5): copy an AMI into the current region (optionally
//! encrypted), waited for until available. `ClientToken` defaults to a token derived from
//! execution, step and iteration.

use serde_json::{Map, Value};

use super::{Action, Context, Result, api};

pub const ACTION: Action = Action {
    cancel_target: false,
    builtin_outputs: &["ImageId", "ImageState"],
    execute: executor!(execute),
    calls_aws: true,
    ..Action::new("aws:copyImage")
};

async fn execute(context: &Context<'_>, inputs: &Map<String, Value>) -> Result {
    let mut params = Map::new();
    for (input, member) in [
        ("SourceRegion", "SourceRegion"),
        ("SourceImageId", "SourceImageId"),
        ("ImageName", "Name"),
        ("ImageDescription", "Description"),
        ("Encrypted", "Encrypted"),
        ("KmsKeyId", "KmsKeyId"),
        ("ClientToken", "ClientToken"),
    ] {
        if let Some(value) = inputs.get(input) {
            params.insert(member.into(), value.clone());
        }
    }
    let response = api::call_or_fail(context, "ec2", "CopyImage", &params).await?;
    let image = response["ImageId"].as_str().unwrap_or_default().to_string();
    super::create_image::wait_for_image(context, &image).await
}
