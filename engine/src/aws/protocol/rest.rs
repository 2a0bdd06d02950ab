//! Placeholder: being written.

use serde_json::{Map, Value};

use super::{Request, Response, ServiceError};
use crate::aws::model::{Model, Operation};

pub fn serialize(_: &Model, _: &Operation, _: &Map<String, Value>) -> Result<Request, String> {
    Err("not yet".into())
}

pub fn parse(_: &Model, _: &Operation, response: &Response) -> Result<Value, ServiceError> {
    Err(ServiceError { status: response.status, code: "NotYet".into(), message: String::new(), request_id: None })
}
