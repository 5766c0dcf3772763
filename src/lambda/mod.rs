//! The Lambda function: the event parser, the CloudFormation custom-resource protocol and the
//! handler that calls the same run loop as the CLI.

pub mod cfn;
pub mod deadline;
pub mod delivery;
pub mod error;
pub mod function;
pub mod guard;
pub mod metrics;
pub mod request;
pub mod target;

pub use function::Function;
