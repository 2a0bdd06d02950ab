//! The AWS client: every service driven by its botocore model (`model`), requests and
//! responses in the five wire protocols (`protocol`). Only this module talks to AWS.

pub mod model;
pub mod protocol;
