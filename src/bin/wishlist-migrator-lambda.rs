//! `wishlist-migrator-lambda` (deployed as `bootstrap`): JSON logs for CloudWatch, then the
//! library's handler under the Lambda runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use wishlist_migrator::lambda::function::Function;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
    let function = Arc::new(Function::from_env().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| function.clone().handle(event))).await
}
